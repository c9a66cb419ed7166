"""The clip writer: `open_writer` checks a clip's options and picks its encoder; `ClipWriter` feeds it on a thread.

A clip is streamed, never held whole: `ClipWriter.write` hands a chunk of frames to an encoder thread
through a queue of at most `QUEUE_CHUNKS` chunks, so a 10-minute 1080p render needs the memory of a few
chunks, and the generator/compositor keeps working while the encoder (which releases the GIL) runs.
A full disk or a size limit ends the clip with one `OutputError` naming it and the cause, and clips
finished before are untouched.
"""

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjgan.errors import RenderError
from vjgan.files import is_write_failure, write_error, writing
from vjgan.render.video.av_encoder import AvEncoder
from vjgan.render.video.codecs import CODECS, frame_rate, resolve_output
from vjgan.render.video.encoder import Encoder
from vjgan.render.video.frames import SCALE_INTERPOLATIONS, Scaler
from vjgan.render.video.gif import GIF_MAX_FPS
from vjgan.render.video.pipe_encoder import PipeEncoder
from vjgan.render.video.png import PngEncoder
from vjgan.sizes import check_frame_size

QUEUE_CHUNKS = 2  # chunks waiting for the encoder thread; bounds the writer's memory to a few chunks


@dataclass(frozen=True)
class WriterOptions:
    """How one clip is written; everything but `fps` and `frame_size_wh` has a default that fits one clip.

    `fmt` defaults to the path's suffix (.mp4, .mov, .gif; no suffix = a folder of PNG frames) and
    `codec` to the format's own (h264 for .mp4, prores for .mov); hap, hap_q, hap_alpha and dxv write
    .mov, padded to their block size (`PipeEncoder`).
    """

    fps: float  # frames per second; kept as an exact fraction (30000/1001 stays NTSC-exact)
    frame_size_wh: tuple[int, int]  # the clip's (width, height) in pixels
    codec: str | None = None  # a `CODECS` name; None = the format's own
    fmt: str | None = None  # a `FORMATS` name; None = from the path's suffix
    audio_path: Path | str | None = None  # a track muxed in as AAC, cut or padded to the video's duration
    source_size_wh: tuple[int, int] | None = None  # size of the frames given to `write` when not the clip's
    scale_filter: str = "bicubic"  # how frames at `source_size_wh` are scaled: a `render.layout.FILTERS` name
    encoder_threads: int = 0  # cap on the PyAV encoder's threads, for clips encoded side by side; 0 = FFmpeg's
    announce_padding: bool = True  # print that HAP/DXV frames were padded (off for all but one of many clips)


def open_writer(path, options: WriterOptions) -> "ClipWriter":
    """A `ClipWriter` for a clip at `path`, after every check that can fail before rendering starts."""
    path = Path(path)
    fmt, codec = resolve_output(path, options.codec, options.fmt)
    frame_size_wh = tuple(options.frame_size_wh)
    check_frame_size(frame_size_wh)
    rate = frame_rate(options.fps, path)
    if fmt == "gif" and rate > GIF_MAX_FPS:
        raise RenderError(f"{path}: {float(rate):g} fps is too fast for GIF players; render GIFs at {GIF_MAX_FPS} fps or less")
    if options.audio_path is not None and fmt in ("gif", "png"):
        raise RenderError(f"{path}: {fmt} output cannot carry the audio track; render .mp4 or .mov")
    if options.scale_filter not in SCALE_INTERPOLATIONS:
        raise RenderError(f"filter {options.scale_filter!r}: choose one of {', '.join(SCALE_INTERPOLATIONS)}")
    scaler = Scaler(frame_size_wh, options.scale_filter)
    encoder: Encoder
    if fmt == "png":
        encoder = PngEncoder(path, scaler)
    elif codec is not None and CODECS[codec].piped:
        encoder = PipeEncoder(path, codec, rate, scaler, options.audio_path, options.announce_padding)
    else:
        encoder = AvEncoder(path, fmt, codec, rate, scaler, options.audio_path, options.encoder_threads)
    return ClipWriter(encoder, path, tuple(options.source_size_wh or frame_size_wh))


class ClipWriter:
    """Streams `(n, H, W, 3)` uint8 RGB chunks to an encoder thread; a context manager.

    Where `takes_yuv420p`, chunks may also be ready yuv420p frames, `(n, H * 3 // 2, W)` uint8 as
    `layout.to_yuv420p` makes them: the encoder then takes them as they are, with no RGB frame and no
    swscale on its thread.

    Leaving the `with` block normally finishes the clip (and raises if the encoder failed); leaving it
    by an exception discards the partial output. Chunks passed to `write` are encoded later, on the
    thread: do not modify them in place afterwards.
    """

    def __init__(self, encoder: Encoder, path: Path, frame_size_wh: tuple[int, int]):
        self.path = path
        self.frame_size_wh = frame_size_wh
        self.frames_written = 0
        self._encoder = encoder
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._encode_queued, name="vjgan-encoder", daemon=True)
        self._thread.start()

    @property
    def takes_yuv420p(self) -> bool:
        """Whether `write` takes yuv420p chunks: the encoder is fed yuv420p (H.264) and the chunks are
        at the clip's own size (swscale would scale a smaller canvas anyway, converting it on the way)."""
        return self._encoder.takes_yuv420p and self.frame_size_wh == self._encoder.scaler.frame_size_wh

    def write(self, frames: np.ndarray) -> None:
        """Queue a chunk: RGB `(n, H, W, 3)`, or yuv420p `(n, H * 3 // 2, W)` where `takes_yuv420p`; uint8."""
        width, height = self.frame_size_wh
        rgb_shape, yuv420p_shape = (height, width, 3), (height * 3 // 2, width)
        shapes = [rgb_shape, yuv420p_shape] if self.takes_yuv420p else [rgb_shape]
        if frames.dtype != np.uint8 or frames.shape[1:] not in shapes:
            expected = " or ".join(f"(n, {', '.join(map(str, shape))})" for shape in shapes)
            raise ValueError(f"expected {expected} uint8 frames, got {frames.shape} {frames.dtype}")
        self._raise_encoder_error()
        self._queue.put(np.ascontiguousarray(frames))  # blocks while the encoder is QUEUE_CHUNKS behind
        self.frames_written += len(frames)

    def close(self) -> None:
        """Finish the clip: drain the queue, flush the encoders, move the file into place."""
        self._stop_thread()
        try:
            self._raise_encoder_error()
            if self.frames_written == 0:
                raise RenderError(f"{self.path}: no frames were rendered")
            with writing(self.path, "the clip"):
                self._encoder.finish(self.frames_written)
        except BaseException:
            self._encoder.discard()
            raise

    def discard(self) -> None:
        """Abandon the clip and remove what was written of it."""
        self._stop_thread()
        self._encoder.discard()

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _encode_queued(self) -> None:
        while (frames := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that `write` never blocks on a dead encoder
            try:
                self._encoder.encode(frames)
            except BaseException as error:  # re-raised on the caller's thread
                self._error = error

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise_encoder_error(self) -> None:
        """Re-raise the encoder thread's failure here; the disk refusing a write reads as one line naming the clip."""
        if self._error is not None and is_write_failure(self._error):
            raise write_error(self.path, "the clip", self._error) from None
        if self._error is not None:
            raise self._error
