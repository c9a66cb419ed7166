"""Live outputs, each through its real library: NDI over loopback to a cyndilib receiver in this process, the
virtual camera through a pyvirtualcam backend registered here (its own extension point: CI has no
v4l2loopback device), recordings decoded back with PyAV, and the missing-package errors in a child process."""

import glob
import os
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import pyvirtualcam
from services import ndi_loopback  # noqa: F401

from vjgan.errors import LiveError
from vjgan.live.outputs import NdiOutput, Recorder, Scaler, SpoutOutput, SyphonOutput, VirtualCamOutput

RED, BLUE = (230, 30, 60), (20, 60, 220)
COLOUR_TOLERANCE = 8  # per channel: limited-range YUV rounds, HAP's DXT1 keeps 5:6:5 colours
NDI_COLOUR_TOLERANCE = 14  # NDI's codec (SpeedHQ, 4:2:2) is lossy too: saturated blue came back 9 off


def two_halves(width: int, height: int, left=RED, right=BLUE) -> np.ndarray:
    """A canvas whose left half is `left` and right half `right`: a colour check that also sees a mirror."""
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:, : width // 2] = left
    canvas[:, width // 2 :] = right
    return canvas


def assert_halves(picture: np.ndarray, left=RED, right=BLUE, tolerance=COLOUR_TOLERANCE) -> None:
    height, width = picture.shape[:2]
    assert np.abs(picture[height // 2, width // 4, :3].astype(int) - left).max() <= tolerance
    assert np.abs(picture[height // 2, 3 * width // 4, :3].astype(int) - right).max() <= tolerance


def bt709_limited(rgb) -> tuple[float, float, float]:
    """(Y, Cb, Cr) of an 8-bit RGB colour in BT.709, limited range: how NDI reads UYVY."""
    r, g, b = np.asarray(rgb) / 255
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 16 + 219 * luma, 128 + 224 * (b - luma) / 1.8556, 128 + 224 * (r - luma) / 1.5748


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s")
        time.sleep(0.02)
    return result


def test_scaler_makes_packed_frames_of_the_output_size_and_format():
    canvas = two_halves(96, 54)
    bgra = Scaler((160, 90), "bgra")(canvas)
    assert bgra.shape == (90, 160, 4) and bgra.flags.c_contiguous
    assert_halves(bgra[..., [2, 1, 0]])
    uyvy = Scaler((162, 90), "uyvy422")(canvas)  # 162 * 2 bytes a line: swscale pads it, the sender must not
    assert uyvy.shape == (90, 162, 2) and uyvy.flags.c_contiguous
    for x, colour in ((40, RED), (120, BLUE)):  # U Y V Y: chroma on byte 0 (U at even pixels, V at odd), luma on byte 1
        y, u, v = bt709_limited(colour)
        assert np.abs(uyvy[45, x : x + 2].astype(float) - [(u, y), (v, y)]).max() <= 2
    assert Scaler((96, 54), "rgb24")(canvas) is canvas  # nothing to do: no copy
    with pytest.raises(ValueError, match="pixel format 'yuv420p'"):
        Scaler((96, 54), "yuv420p")


def ndi_receiver(source_name: str):
    """A cyndilib receiver connected to the source listed as `source_name`, delivering RGBA."""
    import cyndilib
    from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

    finder = cyndilib.Finder()
    finder.open()

    def listed():
        finder.wait_for_sources(0.2)
        return source_name in finder.get_source_names()

    wait_until(listed, 10, f"NDI source {source_name!r} not listed")
    receiver = cyndilib.Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
    receiver.frame_sync.set_video_frame(cyndilib.VideoFrameSync())
    receiver.set_source(finder.get_source(source_name))
    return finder, receiver


def test_ndi_sends_frames_of_the_output_size_a_receiver_finds_by_name_and_never_blocks(ndi_loopback):  # noqa: F811
    name = f"vjgan-test-{os.getpid()}"
    canvas = two_halves(192, 108)
    with NdiOutput(name, (1280, 720), 30) as ndi:
        assert ndi.source_name.endswith(f" ({name})") and ndi.name == f"NDI {ndi.source_name}"
        ndi.send(canvas)
        finder, receiver = ndi_receiver(ndi.source_name)
        try:
            video = receiver.frame_sync.video_frame

            def received():
                ndi.send(canvas)
                receiver.frame_sync.capture_video()
                return min(video.get_resolution()) > 0 and video.get_data_size() > 0

            wait_until(received, 10, "no NDI frame received")
            assert video.get_resolution() == (1280, 720)
            assert video.get_frame_rate() == 30
            assert_halves(video.get_array().reshape(720, 1280, 4), tolerance=NDI_COLOUR_TOLERANCE)

            # A consumer slower than the caller: the receiver stops reading, and frames come back to back
            # (the sender thread scales and NDI compresses each one): send() only hands them over.
            before_sent, before_dropped = ndi.frames_sent, ndi.frames_dropped
            seconds = []
            for _ in range(120):
                start = time.perf_counter()
                ndi.send(canvas)
                seconds.append(time.perf_counter() - start)
            assert sum(seconds) < 0.25 and max(seconds) < 0.05, f"send() waited: {max(seconds) * 1000:.1f} ms at most"
            assert ndi.frames_dropped - before_dropped > 0
            assert ndi.frames_sent - before_sent < 120
            wait_until(lambda: ndi.frames_sent > before_sent, 5, "the newest frame was not sent")
        finally:
            receiver.disconnect()
            finder.close()
    assert not ndi._thread.is_alive()


def test_ndi_refuses_an_empty_name():
    with pytest.raises(LiveError, match=r"NDI: give the source a name \(--ndi NAME\)"):
        NdiOutput("  ", (320, 180), 30)


class RecordingCamera:
    """A pyvirtualcam backend (its documented `Backend` interface) keeping what it is sent; `fail_after`
    frames, it fails as an unplugged device would."""

    cameras: list["RecordingCamera"] = []
    fail_after: int | None = None

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.size_wh, self.fps, self.fourcc, self.name = (width, height), fps, fourcc, device or "/dev/video-test"
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingCamera.cameras.append(self)

    def send(self, frame):
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise OSError("No such device")
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True

    def device(self):
        return self.name

    def native_fourcc(self):
        return None


@pytest.fixture
def test_camera_backend():
    RecordingCamera.cameras.clear()
    pyvirtualcam.register_backend("vjgan-test", RecordingCamera)
    yield "vjgan-test"
    pyvirtualcam.camera.BACKENDS.pop("vjgan-test")
    RecordingCamera.fail_after = None


def test_virtual_camera_gets_rgb_frames_of_its_size(test_camera_backend):
    with VirtualCamOutput((320, 180), 30, backend=test_camera_backend) as camera_output:
        assert camera_output.name == "virtual camera /dev/video-test"
        camera_output.send(two_halves(160, 90))
        wait_until(lambda: camera_output.frames_sent == 1, 5, "the camera got no frame")
    (camera,) = RecordingCamera.cameras
    assert camera.closed and camera.size_wh == (320, 180) and camera.fps == 30
    assert len(camera.frames) == 1 and camera.frames[0].size == 320 * 180 * 3
    assert_halves(camera.frames[0].reshape(180, 320, 3))


def test_a_failing_virtual_camera_stops_with_one_line_and_is_released(test_camera_backend):
    RecordingCamera.fail_after = 1
    camera_output = VirtualCamOutput((64, 48), 30, backend=test_camera_backend)
    camera_output.send(two_halves(64, 48))
    wait_until(lambda: camera_output.frames_sent == 1, 5, "the camera got no frame")
    camera_output.send(two_halves(64, 48))
    wait_until(lambda: RecordingCamera.cameras[0].closed, 5, "the failed camera was not released")
    with pytest.raises(LiveError, match=r"^virtual camera /dev/video-test: stopped sending \(No such device\)$"):
        camera_output.send(two_halves(64, 48))
    camera_output.close()


def test_no_virtual_camera_device_names_what_to_install():
    if glob.glob("/dev/video*"):
        pytest.skip("this machine has a video device, so a virtual camera may open")
    with pytest.raises(LiveError, match=r"^virtual camera: none available \(.*modprobe v4l2loopback") as error:
        VirtualCamOutput((320, 180), 30)
    assert "\n" not in str(error.value)
    with pytest.raises(LiveError, match="virtual camera backend 'obs': not on this system; choose one of v4l2loopback"):
        VirtualCamOutput((320, 180), 30, backend="obs")


def test_syphon_and_spout_name_their_platform_elsewhere():
    with pytest.raises(LiveError, match=r"^Syphon is macOS only; use --ndi$"):
        SyphonOutput("vjgan", (320, 180))
    with pytest.raises(LiveError, match=r"^Spout is Windows only; use --ndi$"):
        SpoutOutput("vjgan", (320, 180))


def decode(path):
    """Every frame of a clip as RGB, with its stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return np.stack(frames), (stream.codec_context.name, stream.average_rate)


@pytest.mark.parametrize(("suffix", "codec", "decoder"), [(".mp4", None, "h264"), (".mov", "hap", "hap")])
def test_recorder_keeps_every_frame_at_the_output_size_even_when_the_canvas_changes(tmp_path, suffix, codec, decoder):
    path = tmp_path / f"show{suffix}"
    recorder = Recorder(path, (128, 72), 30, codec=codec, canvas_size_wh=(96, 54))
    assert recorder.name == f"recording {path}"
    for i in range(21):  # two whole chunks and a part of one
        canvas = two_halves(96, 54) if i % 2 == 0 else two_halves(96, 54, left=BLUE, right=RED)
        recorder.write(canvas if i != 10 else two_halves(64, 64))  # a layout change: stretched to the first canvas
    assert recorder.frames_written == 21
    assert not path.exists()  # written as show.mp4.partial until finished
    recorder.close()
    assert path.exists() and not path.with_name(path.name + ".partial").exists()
    frames, (name, rate) = decode(path)
    assert name == decoder and rate == 30
    assert frames.shape == (21, 72, 128, 3)
    for i in (0, 10, 20):
        assert_halves(frames[i].astype(int), *((RED, BLUE) if i % 2 == 0 else (BLUE, RED)))
    assert_halves(frames[1].astype(int), BLUE, RED)


def test_recorder_finishes_the_clip_when_the_show_stops_by_an_exception(tmp_path):
    path = tmp_path / "show.mp4"
    with pytest.raises(KeyboardInterrupt):
        with Recorder(path, (64, 48), 30) as recorder:
            for _ in range(3):
                recorder.send(two_halves(64, 48))
            raise KeyboardInterrupt
    assert decode(path)[0].shape == (3, 48, 64, 3)


MISSING_PACKAGES = """
import sys
sys.modules["cyndilib"] = None  # as if not installed
sys.modules["pyvirtualcam"] = None
from vjgan.errors import LiveError
from vjgan.live.outputs import NdiOutput, VirtualCamOutput
for output in (lambda: NdiOutput("vjgan", (320, 180), 30), lambda: VirtualCamOutput((320, 180), 30)):
    try:
        output()
    except LiveError as error:
        print(error)
"""


def test_missing_packages_are_one_line_naming_the_install_command():
    # the module imports neither package until an output opens: `vjgan` starts without them
    lines = subprocess.run([sys.executable, "-c", MISSING_PACKAGES], capture_output=True, text=True, check=True).stdout
    ndi, camera = lines.splitlines()
    assert ndi.startswith("NDI output needs cyndilib (") and ndi.endswith('): pip install "vjgan[live]"')
    assert camera.startswith("the virtual camera needs pyvirtualcam (") and camera.endswith('): pip install "vjgan[live]"')
