"""Where the live canvas goes besides the window: NDI, a virtual camera, Syphon (macOS), Spout (Windows) and
a recording, each behind one small interface: `send(frame)`, `close()`, a context manager, and `name` for
the status line.

The render loop calls `send` once per displayed frame with the composed canvas, (h, w, 3) uint8 RGB, and
must never wait on a receiver: a network peer that reads slowly, a virtual camera nobody opened, a GPU
share that waits on a driver. So each streaming output hands the frame to a sender thread of its own
through a one-slot, newest-wins mailbox (`StreamOutput`): a frame not yet taken when the next one comes is
dropped and counted, never queued, because a queue only makes a live picture late. That thread scales the
canvas to the output's size and pixel format (`Scaler`: swscale, which runs without the GIL) and makes the
library call that may block. A recording must keep every frame instead: `Recorder` copies each one into a
chunk and hands whole chunks to the clip writer's encoder thread.

A frame given to `send` is read later, on another thread: hand over a new array each tick (a readback
makes one) and do not change it afterwards. The packages are optional (`pip install "vjgan[live]"`) and
imported only when an output opens, so `vjgan` starts without them.
"""

import sys
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from vjgan.errors import LiveError
from vjgan.live import import_package
from vjgan.render.video import Scaler as ClipScaler
from vjgan.render.video import WriterOptions, open_writer
from vjgan.sizes import check_frame_size

PACKED_BYTES_PER_PX = {"uyvy422": 2, "bgra": 4, "rgba": 4, "rgb24": 3}  # pixel formats `Scaler` makes: one plane each
RECORD_CHUNK_FRAMES = 8  # frames per chunk handed to the encoder: ~0.27 s at 30 fps; the writer queues two more
GL_RGBA = 0x1908  # OpenGL's enum for RGBA pixels, which Spout's sendImage takes (fixed by the GL standard)


class Output(Protocol):
    """What the live app holds for each output: one `send` per displayed frame, `close` at the end."""

    name: str  # for the status line, e.g. "NDI HOST (vjgan)", "recording show.mov"

    def send(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


def check_canvas(frame: np.ndarray) -> None:
    """A programming error, not a user's: the compositor hands over (h, w, 3) uint8 RGB or nothing."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) uint8 RGB canvas, got {frame.shape} {frame.dtype}")


@dataclass
class Scaler:
    """Canvas -> an output's size and packed pixel format in one bicubic swscale call, through the clip
    writer's scaler (`render.video.Scaler`), so live outputs and rendered clips look alike: YUV is BT.709,
    limited range, which is also what NDI reads UYVY as at every size. A 1080p frame from a 384x216 canvas
    takes ~7 ms as UYVY, ~12 ms as BGRA or RGB (one CPU core): run it on a sender thread, never on the render loop."""

    size_wh: tuple[int, int]  # (width, height) in pixels of what the output sends
    pixel_format: str  # a `PACKED_BYTES_PER_PX` name
    _clip_scaler: ClipScaler = field(init=False, repr=False)

    def __post_init__(self):
        if self.pixel_format not in PACKED_BYTES_PER_PX:
            raise ValueError(f"pixel format {self.pixel_format!r}: choose one of {', '.join(PACKED_BYTES_PER_PX)}")
        self.size_wh = tuple(self.size_wh)
        self._clip_scaler = ClipScaler(self.size_wh, "bicubic")

    def __call__(self, canvas: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 RGB -> (H, W, bytes per pixel) uint8, rows packed (swscale pads its lines)."""
        if self.pixel_format == "rgb24" and canvas.shape[1::-1] == self.size_wh:
            return canvas
        width, height = self.size_wh
        plane = self._clip_scaler.video_frame(np.ascontiguousarray(canvas), self.pixel_format).planes[0]
        bytes_per_px = PACKED_BYTES_PER_PX[self.pixel_format]
        rows = np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, : width * bytes_per_px]
        return np.ascontiguousarray(rows).reshape(height, width, bytes_per_px)


class StreamOutput:
    """The newest-wins hand-off every streaming output shares: `send` never waits; a daemon thread scales
    the newest frame and delivers it.

    A subclass opens its library in `__init__` before calling this one's, so that a missing device fails
    there, on one line, with no thread started; `_deliver` and `_release` run on the sender thread only,
    because a GL-based share (Spout) must stay on the thread whose context it made. A failure on that
    thread stops the output and is raised as a `LiveError` by the next `send`, so the caller can drop this
    output and keep playing.
    """

    def __init__(self, name: str, scaler: Scaler):
        self.name = name
        self.frames_sent = 0  # frames the library took
        self.frames_dropped = 0  # frames replaced by a newer one before the sender thread took them
        self._scaler = scaler
        self._ready = threading.Condition()
        self._pending: np.ndarray | None = None
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"vjgan-{name}", daemon=True)
        self._thread.start()

    def send(self, frame: np.ndarray) -> None:
        """Hand the newest canvas to the sender thread (replacing one it has not taken yet) and return."""
        check_canvas(frame)
        with self._ready:
            if self._error is not None:
                raise LiveError(f"{self.name}: stopped sending ({self._error})")
            if self._closing:
                raise ValueError(f"{self.name} is closed")
            if self._pending is not None:
                self.frames_dropped += 1
            self._pending = frame
            self._ready.notify()

    def close(self) -> None:
        """Stop the sender thread (a frame it is delivering is finished first) and release the library."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()

    def __enter__(self) -> "StreamOutput":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        try:
            while (frame := self._take()) is not None:
                self._deliver(self._scaler(frame))
                self.frames_sent += 1
        except Exception as error:  # raised on the render loop's thread by the next `send`
            self._error = error
        finally:
            self._release()

    def _take(self) -> np.ndarray | None:
        with self._ready:
            self._ready.wait_for(lambda: self._pending is not None or self._closing)
            frame, self._pending = self._pending, None
            return None if self._closing else frame

    def _deliver(self, pixels: np.ndarray) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class NdiOutput(StreamOutput):
    """An NDI source that Resolume, OBS and TouchDesigner list as "<hostname> (<name>)" (`source_name`).

    Frames go as UYVY, NDI's own 4:2:2 format, which it compresses as it is (BGRA it would convert first)
    and which is half the bytes of BGRA to copy. NDI does not clock the sends (`clock_video=False`): frames
    already come at the live fps, and its clock would only hold the sender thread back up to a frame more.
    """

    def __init__(self, name: str, size_wh: tuple[int, int], fps: float):
        cyndilib = import_package("cyndilib", "NDI output", "cyndilib")
        if not name.strip():
            raise LiveError("NDI: give the source a name (--ndi NAME)")
        check_frame_size(size_wh)
        frame = cyndilib.VideoSendFrame()
        frame.set_resolution(*size_wh)
        frame.set_frame_rate(Fraction(fps).limit_denominator(1001))
        frame.set_fourcc(cyndilib.FourCC.UYVY)
        sender = cyndilib.Sender(name, clock_video=False)
        sender.set_video_frame(frame)
        try:
            sender.open()
        except Exception as error:  # the NDI runtime's failures reach Python as bare Exceptions
            raise LiveError(f"NDI {name!r}: cannot start the sender ({error})") from None
        self._sender = sender
        self.source_name = sender.source.name
        super().__init__(f"NDI {self.source_name}", Scaler(size_wh, "uyvy422"))

    def _deliver(self, pixels: np.ndarray) -> None:
        self._sender.write_video_async(pixels.reshape(-1))  # waits while NDI still compresses the previous frame

    def _release(self) -> None:
        self._sender.close()


def virtual_camera_help() -> str:
    """What to install for a virtual camera on this platform."""
    if sys.platform.startswith("linux"):
        return "load v4l2loopback: sudo modprobe v4l2loopback exclusive_caps=1 (apt-get install v4l2loopback-dkms)"
    return "install OBS Studio (28 or newer) and start its virtual camera once"


class VirtualCamOutput(StreamOutput):
    """A virtual webcam (pyvirtualcam) that video-call and streaming apps open like a camera: OBS's virtual
    camera on Windows and macOS, a v4l2loopback device (/dev/videoN) on Linux. `device` and `backend` pick
    one where several exist (pyvirtualcam's names: "v4l2loopback", "obs", "unitycapture")."""

    def __init__(self, size_wh: tuple[int, int], fps: float, device: str | None = None, backend: str | None = None):
        pyvirtualcam = import_package("pyvirtualcam", "the virtual camera", "pyvirtualcam")
        check_frame_size(size_wh)
        backends = pyvirtualcam.camera.BACKENDS
        if backend is not None and backend not in backends:
            raise LiveError(
                f"virtual camera backend {backend!r}: not on this system; choose one of {', '.join(backends) or 'none'}"
            )
        try:
            camera = pyvirtualcam.Camera(*size_wh, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device, backend=backend)
        except (RuntimeError, OSError, ValueError) as error:
            reasons = "; ".join(str(error).splitlines()) or "no virtual camera backend for this platform"
            what = f"virtual camera {device}" if device else "virtual camera"
            raise LiveError(f"{what}: none available ({reasons}); {virtual_camera_help()}") from None
        self._camera = camera
        super().__init__(f"virtual camera {camera.device}", Scaler(size_wh, "rgb24"))

    def _deliver(self, pixels: np.ndarray) -> None:
        self._camera.send(pixels)

    def _release(self) -> None:
        self._camera.close()


class SyphonOutput(StreamOutput):
    """A Syphon server (macOS) named `name`: an RGBA Metal texture that Resolume, VDMX, MadMapper and
    TouchDesigner read on the GPU (syphon-python's documented `SyphonMetalServer` API). Untested here: CI
    has no macOS."""

    def __init__(self, name: str, size_wh: tuple[int, int]):
        if sys.platform != "darwin":
            raise LiveError("Syphon is macOS only; use --ndi")
        syphon = import_package("syphon", "Syphon output", "syphon-python")
        raw = import_package("syphon.utils.raw", "Syphon output", "syphon-python")
        self._server = syphon.SyphonMetalServer(name)
        self._texture = raw.create_mtl_texture(self._server.device, *size_wh)
        self._copy_to_texture = raw.copy_bytes_to_mtl_texture
        super().__init__(f"Syphon {name}", Scaler(size_wh, "rgba"))

    def _deliver(self, pixels: np.ndarray) -> None:
        self._copy_to_texture(pixels.tobytes(), self._texture)
        self._server.publish_frame_texture(self._texture)

    def _release(self) -> None:
        self._server.stop()


class SpoutOutput(StreamOutput):
    """A Spout sender (Windows) named `name`, read on the GPU by Resolume and TouchDesigner (SpoutGL's
    documented `SpoutSender.sendImage`, which makes its own OpenGL context on the sender thread). Untested
    here: CI has no Windows."""

    def __init__(self, name: str, size_wh: tuple[int, int]):
        if sys.platform != "win32":
            raise LiveError("Spout is Windows only; use --ndi")
        spout = import_package("SpoutGL", "Spout output", "SpoutGL")
        self._sender = spout.SpoutSender()
        self._sender.setSenderName(name)
        self._spout_name = name
        super().__init__(f"Spout {name}", Scaler(size_wh, "rgba"))

    def _deliver(self, pixels: np.ndarray) -> None:
        height, width = pixels.shape[:2]
        self._sender.sendImage(pixels, width, height, GL_RGBA, False, 0)
        self._sender.setFrameSync(self._spout_name)  # wakes receivers that wait for each new frame

    def _release(self) -> None:
        self._sender.releaseSender()


class Recorder:
    """Records the show to any clip format vjgan writes (H.264 mp4, ProRes, HAP or DXV mov, ...) through
    `render.video.open_writer`: written as `<path>.partial` and renamed when finished, so a crash never
    leaves a half file under the final name.

    One frame per display tick makes a constant-rate clip at `fps`, and every frame written is recorded.
    `write` copies the frame into a chunk of `RECORD_CHUNK_FRAMES` (one copy per frame on the caller's
    thread, no per-chunk burst) and hands each whole chunk to the encoder thread, which scales the canvas
    to `size_wh` there; the caller waits only while the encoder is more than two chunks behind.

    The canvas may change size mid-show (a layout change): frames of another size are scaled to
    `canvas_size_wh` (stretched, on the caller's thread) so the clip keeps one size. Pass the compositor's
    canvas size when it is smaller than `size_wh`, so that the upscale happens on the encoder thread.
    `close` (and leaving a `with` block, even by an exception or Ctrl-C) finishes the clip: what was
    played is kept.
    """

    def __init__(
        self,
        path: Path | str,
        size_wh: tuple[int, int],
        fps: float,
        codec: str | None = None,
        canvas_size_wh: tuple[int, int] | None = None,
    ):
        self.canvas_size_wh = tuple(canvas_size_wh or size_wh)
        self._writer = open_writer(path, WriterOptions(fps, tuple(size_wh), codec, source_size_wh=self.canvas_size_wh))
        self.path = self._writer.path
        self.name = f"recording {self.path}"
        self._to_canvas = Scaler(self.canvas_size_wh, "rgb24")
        self._chunk: np.ndarray | None = None
        self._filled = 0
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written + self._filled

    def write(self, frame: np.ndarray) -> None:
        """Add one canvas frame to the clip."""
        check_canvas(frame)
        if self._closed:
            raise ValueError(f"{self.name} is closed")
        if self._chunk is None:
            width, height = self.canvas_size_wh
            self._chunk = np.empty((RECORD_CHUNK_FRAMES, height, width, 3), np.uint8)
        self._chunk[self._filled] = self._to_canvas(frame)
        self._filled += 1
        if self._filled == RECORD_CHUNK_FRAMES:
            self._hand_over_chunk()

    send = write  # the interface every output shares

    def close(self) -> None:
        """Encode what is left and move the finished clip into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._hand_over_chunk()
        except BaseException:
            self._writer.discard()
            raise
        self._writer.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _hand_over_chunk(self) -> None:
        if self._filled:
            self._writer.write(self._chunk[: self._filled])  # the writer keeps this array: the next chunk is a new one
        self._chunk, self._filled = None, 0
