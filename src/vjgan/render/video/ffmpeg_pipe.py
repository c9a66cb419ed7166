"""FFmpeg as a child process fed raw frames through its stdin, for encoders PyAV's bundled FFmpeg lacks.

PyAV's FFmpeg is built without Snappy, so it cannot encode HAP; imageio-ffmpeg ships an FFmpeg binary
that can (`imageio_ffmpeg.get_ffmpeg_exe()`, which honours IMAGEIO_FFMPEG_EXE). Everything goes in on
stdin, the one pipe every OS (Windows too) gives a child: raw video and raw audio interleaved in one NUT
stream (`pipe_encoder` muxes it), so there is no second pipe to keep in step with the first and plain
blocking writes cannot deadlock. FFmpeg's log goes to a temporary file, never to a pipe
nobody reads, so a chatty FFmpeg cannot stall; its first and last lines are the reason given when it fails,
unless the disk refused its writes (full, or a file-size limit): that is an `OutputError` naming the clip.
"""

import errno
import functools
import os
import re
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
    """One FFmpeg run writing `output` from one input read on stdin: `write` feeds it (a file-like sink).

    `input_args` describe the stdin stream (its format, and for raw video its size and rate); `label`
    names the clip in error messages. `finish` waits for a clean exit; `kill` abandons the run.
    """

    def __init__(self, exe: str, input_args: list[str], output_args: list[str], output: Path, label: Path):
        self.label = label
        self.log = tempfile.TemporaryFile()
        command = [
            exe,
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "error",
            "-y",
            *input_args,
            "-i",
            "pipe:0",
            *output_args,
            str(output),
        ]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                bufsize=0,
                # Keep Python's ignored SIGXFSZ: a file-size limit then fails FFmpeg's write with EFBIG, which it
                # logs and exits on as on a full disk's ENOSPC, instead of killing it with no word (POSIX only).
                restore_signals=False,
            )
        except OSError as error:
            self.log.close()
            raise RenderError(f"{label}: cannot run FFmpeg at {exe} ({error.strerror or error}); {INSTALL_FIX}") from None
        self.stdin = self.process.stdin

    def write(self, data) -> int:
        """Writes a whole bytes-like to FFmpeg's stdin; raises RenderError if FFmpeg died."""
        view = memoryview(data).cast("B")
        size = view.nbytes
        try:
            while view.nbytes:  # a raw write may stop short (a signal), so write the rest
                view = view[self.stdin.write(view) :]
        except (BrokenPipeError, ValueError):  # ValueError: stdin already closed by an earlier failure
            raise self.failure() from None
        return size

    def finish(self) -> None:
        """End the input and wait for FFmpeg to write the file; RenderError if it fails."""
        self._close_input()
        if self.process.wait() != 0:
            raise self.failure()
        self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_input()
        self.log.close()

    def failure(self) -> VjganError:
        """The error to raise once FFmpeg has failed: the clip's name and FFmpeg's first and last log lines
        (the first is the cause, e.g. a bad option; the last what failed, e.g. opening the output), or,
        when the disk refused its writes, the `OutputError` any other writer gives."""
        self._close_input()
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

    def _close_input(self) -> None:
        """EOF on stdin; a write still buffered in a dead FFmpeg's pipe is dropped."""
        try:
            self.stdin.close()
        except BrokenPipeError:
            pass


def refused_write(lines: list[str], exit_code: int) -> int | None:
    """The errno of a write the disk refused, from FFmpeg's log or its death by SIGXFSZ (a size limit in a
    process that does not ignore the signal); None when FFmpeg failed for another reason."""
    size_limit_signal = getattr(signal, "SIGXFSZ", None)  # None on Windows
    if size_limit_signal is not None and exit_code == -size_limit_signal:
        return errno.EFBIG
    return next((code for code in WRITE_FAILURE_ERRNOS if any(os.strerror(code) in line for line in lines)), None)


def log_lines(log: bytes) -> list[str]:
    """FFmpeg's non-empty log lines, without the addresses in their prefixes ("[hap @ 0x5f..]" -> "[hap]")."""
    text = re.sub(r" @ 0x[0-9a-f]+", "", log.decode(errors="replace"))
    return [line.strip() for line in text.splitlines() if line.strip()]
