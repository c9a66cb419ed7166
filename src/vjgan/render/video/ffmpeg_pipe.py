"""FFmpeg as a child process fed raw frames through pipes, for encoders PyAV's bundled FFmpeg lacks.

PyAV's FFmpeg is built without Snappy, so it cannot encode HAP; imageio-ffmpeg ships an FFmpeg binary
that can (`imageio_ffmpeg.get_ffmpeg_exe()`, which honours IMAGEIO_FFMPEG_EXE). Raw video goes in on
stdin and, for a clip with sound, raw audio through a second pipe. FFmpeg reads its inputs in step
(it stops reading whichever runs ahead), so a blocking write to one pipe could wait forever for FFmpeg to
drain the other: with two inputs both are written non-blocking, as FFmpeg takes them. That second pipe
is a POSIX file descriptor (Linux, macOS). FFmpeg's log goes to a temporary file, never to a pipe
nobody reads, so a chatty FFmpeg cannot stall; its first and last lines are the reason given when it fails,
unless the disk refused its writes (full, or a file-size limit): that is an `OutputError` naming the clip.
"""

import errno
import functools
import os
import re
import selectors
import signal
import subprocess
import tempfile
from pathlib import Path

from vjgan.errors import RenderError, VjganError
from vjgan.files import write_error

INSTALL_FIX = "pip install imageio-ffmpeg, or point IMAGEIO_FFMPEG_EXE at an FFmpeg that has it"
LOG_EDGE_BYTES = 4096  # read from the start and the end of FFmpeg's log for its first and last messages
EXIT_WAIT_SECONDS = 10  # grace for a failing FFmpeg to exit on its own before it is killed
# Write failures FFmpeg logs by their strerror ("Error writing trailer: File too large"): the disk, not FFmpeg.
WRITE_FAILURE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS)


def ffmpeg_exe(encoder: str, codec: str) -> str:
    """imageio-ffmpeg's FFmpeg, checked to run and to have `encoder`; imported only when a codec needs it."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        raise RenderError(f"codec {codec}: needs imageio-ffmpeg's FFmpeg ({error}); {INSTALL_FIX}") from None
    try:
        available = encoders(exe)
    except (OSError, subprocess.SubprocessError) as error:
        raise RenderError(f"codec {codec}: cannot run FFmpeg at {exe} ({error}); {INSTALL_FIX}") from None
    if encoder not in available:
        raise RenderError(f"codec {codec}: FFmpeg at {exe} has no {encoder} encoder; {INSTALL_FIX}")
    return exe


@functools.cache
def encoders(exe: str) -> frozenset[str]:
    """Names of the encoders `exe` has, from `ffmpeg -encoders` (asked once per process)."""
    listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60, check=True).stdout
    table = listing.split("------", 1)[-1]  # lines like " V....D hap    Vidvox Hap" follow the legend
    return frozenset(line.split()[1] for line in table.splitlines() if len(line.split()) >= 2)


class FfmpegProcess:
    """One FFmpeg run writing `output`: input 0 (video) is read from stdin, input 1 (audio) from a pipe.

    `inputs` holds, per input, the options that describe its raw stream (format, size, rate); `label`
    names the clip in error messages. `finish` waits for a clean exit; `kill` abandons the run.
    """

    def __init__(self, exe: str, inputs: list[list[str]], output_args: list[str], output: Path, label: Path):
        if len(inputs) > 1 and os.name == "nt":
            raise RenderError(f"{label}: audio goes to FFmpeg through a second pipe, which Windows lacks; render h264 or prores")
        self.label = label
        self.log = tempfile.TemporaryFile()
        audio_pipe = os.pipe() if len(inputs) > 1 else None
        command = [exe, "-hide_banner", "-nostats", "-loglevel", "error", "-y", *inputs[0], "-i", "pipe:0"]
        if audio_pipe is not None:
            command += [*inputs[1], "-i", f"pipe:{audio_pipe[0]}"]
        command += [*output_args, str(output)]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                bufsize=0,
                pass_fds=audio_pipe[:1] if audio_pipe else (),
                # Keep Python's ignored SIGXFSZ: a file-size limit then fails FFmpeg's write with EFBIG, which it
                # logs and exits on as on a full disk's ENOSPC, instead of killing it with no word.
                restore_signals=False,
            )
        except OSError as error:
            if audio_pipe is not None:
                os.close(audio_pipe[1])
            self.log.close()
            raise RenderError(f"{label}: cannot run FFmpeg at {exe} ({error.strerror or error}); {INSTALL_FIX}") from None
        finally:
            if audio_pipe is not None:
                os.close(audio_pipe[0])  # the child's end
        self.video = self.process.stdin
        self.audio_fd = audio_pipe[1] if audio_pipe else None
        if self.audio_fd is not None:
            os.set_blocking(self.video.fileno(), False)
            os.set_blocking(self.audio_fd, False)

    def send(self, video, audio=b"") -> None:
        """Writes raw video (and audio, with two inputs) bytes-likes; raises RenderError if FFmpeg died."""
        try:
            if self.audio_fd is None:
                view = memoryview(video).cast("B")
                while view.nbytes:  # a raw write may stop short (a signal), so write the rest
                    view = view[self.video.write(view) :]
            else:
                self._send_both(memoryview(video).cast("B"), memoryview(audio).cast("B"))
        except BrokenPipeError:
            raise self.failure() from None

    def finish(self) -> None:
        """End the inputs and wait for FFmpeg to write the file; RenderError if it fails."""
        self._close_inputs()
        if self.process.wait() != 0:
            raise self.failure()
        self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_inputs()
        self.log.close()

    def failure(self) -> VjganError:
        """The error to raise once FFmpeg has failed: the clip's name and FFmpeg's first and last log lines
        (the first is the cause, e.g. a bad option; the last what failed, e.g. opening the output), or,
        when the disk refused its writes, the `OutputError` any other writer gives."""
        self._close_inputs()
        try:
            code = self.process.wait(timeout=EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.seek(0)
        head = log_lines(self.log.read(LOG_EDGE_BYTES))
        self.log.seek(max(0, self.log.seek(0, os.SEEK_END) - LOG_EDGE_BYTES))
        tail = log_lines(self.log.read())
        refused = refused_write(head + tail, code)
        if refused is not None:
            return write_error(self.label, "the clip", OSError(refused, os.strerror(refused)))
        if not head:
            reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        else:
            reason = head[0] if head[0] == tail[-1] else f"{head[0]} ... {tail[-1]}"
        return RenderError(f"{self.label}: FFmpeg failed ({reason})")

    def _send_both(self, video: memoryview, audio: memoryview) -> None:
        pending = {fd: data for fd, data in ((self.video.fileno(), video), (self.audio_fd, audio)) if data.nbytes}
        with selectors.DefaultSelector() as selector:
            for fd in pending:
                selector.register(fd, selectors.EVENT_WRITE)
            while pending:
                for key, _ in selector.select():
                    try:
                        written = os.write(key.fd, pending[key.fd])
                    except BlockingIOError:
                        continue
                    pending[key.fd] = pending[key.fd][written:]
                    if not pending[key.fd].nbytes:
                        selector.unregister(key.fd)
                        del pending[key.fd]

    def _close_inputs(self) -> None:
        """EOF on every input; a write still buffered in a dead FFmpeg's pipe is dropped."""
        try:
            self.video.close()
        except BrokenPipeError:
            pass
        if self.audio_fd is not None:
            os.close(self.audio_fd)
            self.audio_fd = None


def refused_write(lines: list[str], exit_code: int) -> int | None:
    """The errno of a write the disk refused, from FFmpeg's log or its death by SIGXFSZ (a size limit in a
    process that does not ignore the signal); None when FFmpeg failed for another reason."""
    if exit_code == -signal.SIGXFSZ:
        return errno.EFBIG
    return next((code for code in WRITE_FAILURE_ERRNOS if any(os.strerror(code) in line for line in lines)), None)


def log_lines(log: bytes) -> list[str]:
    """FFmpeg's non-empty log lines, without the addresses in their prefixes ("[hap @ 0x5f..]" -> "[hap]")."""
    text = re.sub(r" @ 0x[0-9a-f]+", "", log.decode(errors="replace"))
    return [line.strip() for line in text.splitlines() if line.strip()]
