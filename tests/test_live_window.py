"""The live window, for real: glfw windows on our own Xvfb display, drawn by Mesa's llvmpipe, read back.

Key presses are real X events, made by the XTEST extension (libXtst, which pulseaudio depends on): the X
server delivers them to the focused window exactly as it would a keyboard's.
"""

import ctypes
import ctypes.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from services import x_display  # noqa: F401

from vjgan.errors import LiveError
from vjgan.live.window import OVERLAY_LINES_PER_HEIGHT, LiveWindow, letterbox, list_monitors, overlay_image, save_screenshot
from vjgan.render.layout import from_uint8_hwc, resize_cover_hwc, to_uint8_hwc

CHECKER_COLOURS = np.array(
    [[(i * 60 + 15, j * 60 + 15, (i + j) * 25 + 5) for j in range(4)] for i in range(4)], dtype=np.uint8
)  # (4, 4, 3): 16 distinct colours


@pytest.fixture(scope="module")
def window(x_display):  # noqa: F811
    """One window for the drawing tests (opening one costs a GL context). While it is open the X connection
    stays open, so the others' windows never see Xvfb reset when its last client leaves."""
    with LiveWindow((320, 320), filter="nearest", vsync=False) as window:
        yield window


def sized(window: LiveWindow, size_wh: tuple[int, int], filter: str) -> LiveWindow:
    window.set_size(size_wh)
    window.poll()
    window.filter = filter
    assert window.framebuffer_size_wh == size_wh
    return window


def renderer_resampled(frame: np.ndarray, size_wh: tuple[int, int], filter: str) -> np.ndarray:
    """`frame` scaled to size_wh (same aspect) by `vjgan.render.layout`, as a rendered clip would be."""
    images = from_uint8_hwc(frame)  # (3, h, w)
    scaled = resize_cover_hwc(images[None], size_wh[::-1], filter)  # (1, H, W, 3)
    return to_uint8_hwc(scaled.permute(0, 3, 1, 2))[0]


def test_nearest_draws_the_canvas_in_exact_blocks(window):
    sized(window, (320, 320), "nearest").show(CHECKER_COLOURS)
    pixels = window.read_pixels()
    assert pixels.shape == (320, 320, 3)
    assert np.array_equal(pixels, CHECKER_COLOURS.repeat(80, axis=0).repeat(80, axis=1))


@pytest.mark.parametrize("filter", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("canvas_px", "window_px"), [(24, 250), (96, 40)], ids=["upscale", "shrink"])
def test_smooth_filters_match_the_renderers_resampling(window, filter, canvas_px, window_px):
    frame = np.random.default_rng(canvas_px).integers(0, 256, (canvas_px, canvas_px, 3), dtype=np.uint8)
    sized(window, (window_px, window_px), filter).show(frame)
    difference = np.abs(window.read_pixels().astype(int) - renderer_resampled(frame, (window_px, window_px), filter))
    assert difference.max() <= 1 and difference.mean() < 0.05  # float32 on the GPU against float32 matmuls: rounding only
    nearest = renderer_resampled(frame, (window_px, window_px), "nearest")
    assert np.abs(window.read_pixels().astype(int) - nearest).mean() > 5  # the filter really is a different one


@pytest.mark.parametrize(
    ("canvas_hw", "window_wh"), [((64, 64), (320, 180)), ((36, 64), (200, 200))], ids=["pillarbox", "letterbox"]
)
def test_other_aspects_are_centred_on_black_bars(window, canvas_hw, window_wh):
    sized(window, window_wh, "bicubic").show(np.full((4, 4, 3), 200, np.uint8))  # first a canvas that fills the window
    window.show(np.full((*canvas_hw, 3), 255, np.uint8))  # then one of another shape: a new texture, new bars
    pixels = window.read_pixels()
    x, y, width, height = letterbox(canvas_hw[::-1], window_wh)
    assert (width, height) == ((180, 180) if window_wh == (320, 180) else (200, 112))
    inside = np.zeros(pixels.shape[:2], bool)
    inside[window_wh[1] - y - height : window_wh[1] - y, x : x + width] = True
    assert (pixels[inside] == 255).all()
    assert (pixels[~inside] == 0).all()


def test_resizing_the_window_moves_the_picture_with_it(window):
    frame = CHECKER_COLOURS
    sized(window, (320, 320), "nearest").show(frame)
    sized(window, (480, 240), "nearest").show(frame)
    pixels = window.read_pixels()
    assert pixels.shape == (240, 480, 3)
    assert np.array_equal(pixels[:, 120:360], frame.repeat(60, axis=0).repeat(60, axis=1))
    assert (pixels[:, :120] == 0).all() and (pixels[:, 360:] == 0).all()


def test_overlay_draws_text_in_the_top_left_corner_only(window):
    lines = ["fps 30.0", "generator 8.5 ms", "audio -12 dB"]
    grey = np.full((8, 8, 3), 128, np.uint8)
    sized(window, (480, 480), "nearest").show(grey)
    plain = window.read_pixels()
    window.show(grey, overlay=lines)
    with_overlay = window.read_pixels()
    box_h, box_w = overlay_image(lines, max(12, 480 // OVERLAY_LINES_PER_HEIGHT)).shape[:2]
    changed = (with_overlay != plain).any(axis=2)
    assert changed[:box_h, :box_w].mean() > 0.9  # the dark box
    assert not changed[box_h:].any() and not changed[:, box_w:].any()
    box = with_overlay[:box_h, :box_w].max(axis=2)
    assert (box < 80).mean() > 0.5 and (box > 200).sum() > 100  # mostly the dark background, with white text on it
    window.show(grey)
    assert np.array_equal(window.read_pixels(), plain)  # and gone when no longer asked for


class XTest:
    """Real key events through the X server's XTEST extension (as xdotool makes them), over our own connection."""

    def __init__(self):
        self.x11 = self._library("X11", "libx11-6")
        self.xtst = self._library("Xtst", "libxtst6")
        self.x11.XOpenDisplay.restype = ctypes.c_void_p
        self.x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x11.XStringToKeysym.restype = ctypes.c_ulong
        self.x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
        self.x11.XKeysymToKeycode.restype = ctypes.c_ubyte
        self.x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        self.x11.XFlush.argtypes = self.x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        self.display = self.x11.XOpenDisplay(os.environ["DISPLAY"].encode())
        assert self.display, "cannot open the X display"

    @staticmethod
    def _library(name: str, package: str):
        path = ctypes.util.find_library(name)
        if path is None:
            pytest.fail(f"lib{name} not found: apt-get install {package}")
        return ctypes.CDLL(path)

    def press(self, *keysyms: str) -> None:
        """Press the keys in order, then release them in reverse (a chord: "Shift_L", "f" is shift+f)."""
        codes = [self.x11.XKeysymToKeycode(self.display, self.x11.XStringToKeysym(keysym.encode())) for keysym in keysyms]
        for code in codes:
            self.xtst.XTestFakeKeyEvent(self.display, code, True, 0)
        for code in reversed(codes):
            self.xtst.XTestFakeKeyEvent(self.display, code, False, 0)
        self.x11.XFlush(self.display)

    def close(self) -> None:
        self.x11.XCloseDisplay(self.display)


def test_key_presses_reach_on_key_with_glfw_names(window):
    keys = []
    xtest = XTest()
    try:
        with LiveWindow((160, 120), vsync=False, on_key=keys.append) as focused:  # a new window takes the focus
            focused.show(CHECKER_COLOURS)
            for chord in (["space"], ["f"], ["1"], ["Right"], ["Escape"], ["Shift_L", "f"], ["Control_L", "Alt_L", "1"]):
                xtest.press(*chord)
                time.sleep(0.005)  # glfw drops a press stamped the same millisecond as the key's last one
            expected = ["space", "f", "1", "right", "escape", "shift+f", "ctrl+alt+1"]
            deadline = time.monotonic() + 5
            while len(keys) < len(expected) and time.monotonic() < deadline:
                focused.poll()
                time.sleep(0.01)
    finally:
        xtest.close()
    assert keys == expected  # presses only: releases and the modifier keys themselves are not keys


def test_fullscreen_fills_the_monitor_and_toggles_back(window):
    with LiveWindow((200, 100), fullscreen=True, vsync=False) as projector:
        assert projector.fullscreen and projector.framebuffer_size_wh == (1920, 1080)
        projector.toggle_fullscreen()
        projector.poll()
        assert not projector.fullscreen and projector.framebuffer_size_wh == (200, 100)
        projector.toggle_fullscreen()
        projector.show(np.full((96, 96, 3), 255, np.uint8))
        pixels = projector.read_pixels()
        assert projector.framebuffer_size_wh == (1920, 1080)
        assert (pixels[:, 420:1500] == 255).all() and (pixels[:, :420] == 0).all() and (pixels[:, 1500:] == 0).all()


def test_a_monitor_that_is_not_there_is_one_line_naming_it_and_the_count(window):
    monitors = list_monitors()
    assert len(monitors) == 1 and monitors[0].startswith("0: ") and "1920x1080" in monitors[0]
    with pytest.raises(LiveError, match=r"^monitor 3: 1 monitor\(s\) connected \(0: .*1920x1080.*\)") as error:
        LiveWindow(monitor=3)
    assert "\n" not in str(error.value)


def test_no_display_is_one_line_saying_what_to_do(x_display):  # noqa: F811
    script = (
        "from vjgan.errors import LiveError\n"
        "from vjgan.live.window import LiveWindow\n"
        "try:\n    LiveWindow()\nexcept LiveError as error:\n    print(error)\n"
    )
    env = {name: value for name, value in os.environ.items() if name not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""  # no glfw warning, no traceback
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("no display for a window (X11: The DISPLAY environment variable is missing)")
    assert "use --headless, or run under a desktop / xvfb-run" in result.stdout


def test_missing_glfw_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "glfw", None)  # what `import glfw` meets when the package is not installed
    with pytest.raises(LiveError, match=r'^the live window needs glfw \(.*\): pip install "vjgan\[live\]"$'):
        LiveWindow()


def test_screenshot_is_a_png_of_the_window(window, tmp_path):
    frame = CHECKER_COLOURS.repeat(8, axis=0).repeat(8, axis=1)
    path = save_screenshot(tmp_path / "docs" / "live.png", frame, overlay=["fps 30.0"], size_wh=(320, 180), filter="nearest")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (320, 180)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels[60:, :70] == 0).all()  # the bar left of the picture, below the overlay
    assert np.array_equal(pixels[-1, 70:250:45], CHECKER_COLOURS[3])  # the picture's bottom row of blocks
    assert (pixels[:30, :70].max(axis=2) > 200).sum() > 20  # the overlay's text, over the bar
