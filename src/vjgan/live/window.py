"""The live window: the composed canvas scaled to a resizable window or a projector, and an optional status overlay.

The canvas is small (a 96 px generator's frame, or a few hundred px of grid) and the window is large, so
the upscale happens on the GPU, in a fragment shader, not on the CPU: only the canvas (27 KB at 96 px)
crosses to the GPU each frame. The shader resamples as `vjgan.render.layout` does (pixel centres, Keys'
cubic with a = -0.5, taps past the edge dropped and the rest renormalised, the kernel widened when
shrinking), so the window shows what a rendered clip would. It reads all 4 x 4 bicubic taps in one pass:
on Mesa's software renderer (llvmpipe, 2 cores, under Xvfb) two one-axis passes of 4 taps cost as much CPU
(22 ms a 1080 x 1080 picture either way) and more wall time, the cost there being more per pixel drawn
than per tap. There a 16:9 canvas filling a 1080p window costs about 34 ms of CPU a frame with bicubic
(20 ms wall, 2 threads), 19 with bilinear, 14 with nearest: on a machine without a GPU, bilinear leaves
the generator more of the CPU.

The picture keeps the canvas's aspect ratio, centred on black (a projector shows no stretched picture);
a fullscreen window has no decorations and draws nothing but the canvas and the overlay, if asked for.

glfw and moderngl are imported when a window is opened, so the `vjgan` CLI starts without them.
"""

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vjgan.errors import LiveError
from vjgan.files import atomic_path
from vjgan.live import import_package
from vjgan.render.layout import BICUBIC_A

FILTERS = ("nearest", "bilinear", "bicubic")
KERNEL_SUPPORT_PX = {"bilinear": 1.0, "bicubic": 2.0}  # the kernel's half-width, in source pixels
OVERLAY_ALPHA = 160  # the overlay's dark background: opaque enough to read white text over any picture
OVERLAY_LINES_PER_HEIGHT = 40  # overlay text size: the framebuffer's height / this (27 px at 1080p), at least 12 px
MODIFIER_NAMES = (("ctrl", 0x0002), ("alt", 0x0004), ("shift", 0x0001), ("super", 0x0008))  # glfw.MOD_* bits
MODIFIER_KEYS = ("SHIFT", "CONTROL", "ALT", "SUPER")  # glfw.KEY_LEFT_SHIFT ... KEY_RIGHT_SUPER: not keys of their own
NO_DISPLAY = "no display for a window ({reason}): use --headless, or run under a desktop / xvfb-run"

VERTEX_SHADER = """
#version 330
// A quad covering the viewport, from the vertex index alone (no vertex buffer).
void main() {
    vec2 corner = vec2(gl_VertexID & 1, gl_VertexID >> 1);
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
"""

# `vjgan.render.layout.resample_weights` in both axes at once, per screen pixel. TAPS (per axis) is a constant,
# so the loops unroll: on llvmpipe a loop with a varying bound costs more than the taps it saves.
FRAGMENT_SHADER = """
#version 330
uniform sampler2D source;  // the picture, its top row first
uniform ivec4 rect_px;     // x, y, width, height of the picture's place in the framebuffer (y: its bottom row)
uniform vec2 step;         // source pixels per screen pixel, per axis
out vec4 colour;

float kernel(float x) {
    x = abs(x);
#if defined(BICUBIC)
    const float a = BICUBIC_A;
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
#else
    return max(1.0 - x, 0.0);
#endif
}

// The weights of TAPS taps from `first` along one axis; taps past the picture's edge are dropped and the
// rest renormalised; shrinking widens the kernel, so it averages.
void weights(float centre, float step, int size_px, out int first, out float weight[TAPS]) {
    float stretch = max(1.0, step);
    first = int(floor(centre)) - TAPS / 2 + 1;
    float sum = 0.0;
    for (int i = 0; i < TAPS; ++i) {
        int tap = first + i;
        weight[i] = (tap >= 0 && tap < size_px) ? kernel((float(tap) - centre) / stretch) : 0.0;
        sum += weight[i];
    }
    for (int i = 0; i < TAPS; ++i) weight[i] /= sum;
}

void main() {
    vec2 out_px = gl_FragCoord.xy - vec2(rect_px.xy);  // the pixel's centre, from the picture's corner
    out_px.y = float(rect_px.w) - out_px.y;            // counted from the top, as the source's rows are
    vec2 centre = out_px * step - 0.5;                 // where it falls in the source (pixel centres at .0)
    ivec2 size_px = textureSize(source, 0);
#if defined(NEAREST)
    colour = texelFetch(source, clamp(ivec2(floor(centre + 0.5)), ivec2(0), size_px - 1), 0);
#else
    int first_x, first_y;
    float weight_x[TAPS], weight_y[TAPS];
    weights(centre.x, step.x, size_px.x, first_x, weight_x);
    weights(centre.y, step.y, size_px.y, first_y, weight_y);
    colour = vec4(0.0);
    for (int j = 0; j < TAPS; ++j) {
        vec4 row = vec4(0.0);
        for (int i = 0; i < TAPS; ++i) {
            row += weight_x[i] * texelFetch(source, clamp(ivec2(first_x + i, first_y + j), ivec2(0), size_px - 1), 0);
        }
        colour += weight_y[j] * row;
    }
#endif
}
"""


def _gl_modules():
    """glfw and moderngl, or a LiveError saying how to install them."""
    # (ImportError covers glfw's shared library too, bundled in its wheels)
    return import_package("glfw", "the live window", "glfw"), import_package("moderngl", "the live window", "moderngl")


class _Glfw:
    """glfw initialised while anything uses it: glfw.terminate() would destroy every open window, so the last
    user ends it. All glfw calls belong on the main thread, so a plain counter is enough."""

    users = 0

    @classmethod
    def acquire(cls):
        glfw, _ = _gl_modules()
        with warnings.catch_warnings():  # a failure is reported below, once, as a LiveError
            warnings.simplefilter("ignore", glfw.GLFWError)
            if not glfw.init():
                raise LiveError(NO_DISPLAY.format(reason=_last_glfw_error(glfw)))
        cls.users += 1
        return glfw

    @classmethod
    def release(cls, glfw) -> None:
        cls.users -= 1
        if cls.users == 0:
            glfw.terminate()


def _last_glfw_error(glfw) -> str:
    _, description = glfw.get_error()
    return description.decode(errors="replace") if description else "glfw failed without saying why"


def list_monitors() -> list[str]:
    """The connected monitors, as `--monitor` numbers them: "0: NAME 1920x1080 60 Hz"."""
    glfw = _Glfw.acquire()
    try:
        return [f"{index}: {_describe(glfw, monitor)}" for index, monitor in enumerate(glfw.get_monitors())]
    finally:
        _Glfw.release(glfw)


def _describe(glfw, monitor) -> str:
    mode = glfw.get_video_mode(monitor)
    name = glfw.get_monitor_name(monitor)
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    return f"{name} {mode.size.width}x{mode.size.height} {mode.refresh_rate} Hz"


def _monitor(glfw, index: int):
    monitors = glfw.get_monitors()
    if not 0 <= index < len(monitors):
        connected = ", ".join(f"{number}: {_describe(glfw, monitor)}" for number, monitor in enumerate(monitors)) or "none"
        raise LiveError(f"monitor {index}: {len(monitors)} monitor(s) connected ({connected}); choose one of those numbers")
    return monitors[index]


def _key_names(glfw) -> dict[int, str]:
    """glfw's named keys ("space", "right", "escape", "f1", "kp_add"), less the modifiers, which only qualify keys."""
    return {
        getattr(glfw, name): name[4:].lower()
        for name in dir(glfw)
        if name.startswith("KEY_") and name not in ("KEY_UNKNOWN", "KEY_LAST") and not name.endswith(MODIFIER_KEYS)
    }


def letterbox(frame_wh: tuple[int, int], screen_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, width, height) in pixels of the largest rectangle of the frame's aspect centred in the screen."""
    frame_w, frame_h = frame_wh
    screen_w, screen_h = screen_wh
    scale = min(screen_w / frame_w, screen_h / frame_h)
    width, height = max(1, min(screen_w, round(frame_w * scale))), max(1, min(screen_h, round(frame_h * scale)))
    return (screen_w - width) // 2, (screen_h - height) // 2, width, height


class LiveWindow:
    """A window with an OpenGL 3.3 core context showing uint8 canvases; use as a context manager.

    Call `show` once a frame and `poll` between frames (key presses reach `on_key` there, named as glfw
    names keys: "space", "f", "1", "right", "escape"; "shift+f", "ctrl+alt+1" with modifiers). Every call
    belongs on the thread that opened the window (the main thread, for macOS).
    """

    def __init__(
        self,
        size_wh: tuple[int, int] = (1280, 720),
        fullscreen: bool = False,
        monitor: int = 0,
        title: str = "vjgan live",
        filter: str = "bicubic",
        vsync: bool = True,
        on_key: Callable[[str], None] | None = None,
        visible: bool = True,
    ):
        self.filter = filter
        self.monitor = monitor
        self.on_key = on_key
        glfw = self._glfw = _Glfw.acquire()
        self._window = self._ctx = None
        self._windowed_xywh = (0, 0, *size_wh)  # where the window goes back to from fullscreen (saved on the way there)
        try:
            self._open(size_wh, fullscreen, title, vsync, visible)
        except BaseException:
            self.close()
            raise
        self._key_names = _key_names(glfw)
        self._canvas = self._overlay = None  # textures: the canvas (RGB), the overlay (RGBA)
        self._overlay_lines: tuple[tuple[str, ...], int] | None = None  # the overlay's text and size, drawn
        glfw.set_key_callback(self._window, self._key_event)

    def _open(self, size_wh, fullscreen: bool, title: str, vsync: bool, visible: bool) -> None:
        glfw, moderngl = _gl_modules()
        chosen = _monitor(glfw, self.monitor)  # a bad number is refused even in a window: a later toggle would fail
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)  # macOS gives 3.3 core only to forward-compatible contexts
        glfw.window_hint(glfw.VISIBLE, visible)
        glfw.window_hint(glfw.AUTO_ICONIFY, False)  # a projector stays up when the performer clicks on another screen
        width, height = size_wh
        if fullscreen:
            mode = glfw.get_video_mode(chosen)  # the monitor's own mode: no mode switch (windowed fullscreen)
            glfw.window_hint(glfw.REFRESH_RATE, mode.refresh_rate)
            width, height = mode.size.width, mode.size.height
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", glfw.GLFWError)
            self._window = glfw.create_window(width, height, title, chosen if fullscreen else None, None)
        if not self._window:
            raise LiveError(f"no OpenGL 3.3 window ({_last_glfw_error(glfw)}): update the graphics driver, or use --headless")
        if fullscreen:
            glfw.set_input_mode(self._window, glfw.CURSOR, glfw.CURSOR_HIDDEN)
        glfw.make_context_current(self._window)
        glfw.swap_interval(1 if vsync else 0)
        self._ctx = moderngl.create_context(require=330)
        self._quads: dict[tuple[str, int], object] = {}  # by (filter, taps per axis): the shader and its quad

    @property
    def software_renderer(self) -> bool:
        """True when OpenGL is drawn by the CPU (Mesa's llvmpipe or softpipe: no GPU, or a virtual display)."""
        renderer = self._ctx.info.get("GL_RENDERER", "").lower()
        return any(name in renderer for name in ("llvmpipe", "softpipe", "swrast", "software"))

    @property
    def filter(self) -> str:
        """The upscaling filter, one of FILTERS; may change between frames."""
        return self._filter

    @filter.setter
    def filter(self, filter: str) -> None:
        if filter not in FILTERS:
            raise LiveError(f"window filter {filter!r}: choose one of {', '.join(FILTERS)}")
        self._filter = filter

    @property
    def should_close(self) -> bool:
        """True once the window's close button (or the platform's close shortcut) was used."""
        return bool(self._glfw.window_should_close(self._window))

    @property
    def framebuffer_size_wh(self) -> tuple[int, int]:
        """The drawable size in pixels (larger than the window's size on high-DPI screens)."""
        return tuple(self._glfw.get_framebuffer_size(self._window))

    @property
    def fullscreen(self) -> bool:
        return bool(self._glfw.get_window_monitor(self._window))  # a NULL pointer when windowed

    def poll(self) -> None:
        """Handle the window's events without waiting: key presses call `on_key` (an exception it raises comes
        out of here), resizes and closes are noted."""
        self._glfw.poll_events()

    def show(self, frame: np.ndarray, overlay: list[str] | None = None) -> None:
        """Draw a (h, w, 3) uint8 canvas scaled to the window, the overlay's lines on top, and present it."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a canvas is (h, w, 3) uint8, not {frame.shape} {frame.dtype}")
        self._upload(frame)
        self._set_overlay(overlay or [])
        self._draw()
        self._glfw.swap_buffers(self._window)

    def read_pixels(self) -> np.ndarray:
        """The last frame shown, as (H, W, 3) uint8 at the framebuffer's size (for tests and screenshots).

        Drawn again into the back buffer and read from there: a frame's drawing is deterministic, so this is
        the picture on screen, without the cost of keeping a copy of every frame.
        """
        if self._canvas is None:
            raise ValueError("nothing shown yet: call show() first")
        self._draw()
        width, height = self.framebuffer_size_wh
        pixels = np.frombuffer(self._ctx.screen.read(viewport=(0, 0, width, height), components=3, alignment=1), np.uint8)
        return pixels.reshape(height, width, 3)[::-1].copy()  # OpenGL's rows run bottom-up

    def toggle_fullscreen(self) -> None:
        """Fullscreen on `monitor` at its current mode (no mode switch), or back to where the window was."""
        glfw = self._glfw
        if not self.fullscreen:
            monitor = _monitor(glfw, self.monitor)  # monitors come and go: checked again now
            self._windowed_xywh = (*glfw.get_window_pos(self._window), *glfw.get_window_size(self._window))
            mode = glfw.get_video_mode(monitor)
            glfw.set_window_monitor(self._window, monitor, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate)
            glfw.set_input_mode(self._window, glfw.CURSOR, glfw.CURSOR_HIDDEN)
        else:
            glfw.set_window_monitor(self._window, None, *self._windowed_xywh, 0)
            glfw.set_input_mode(self._window, glfw.CURSOR, glfw.CURSOR_NORMAL)

    def set_size(self, size_wh: tuple[int, int]) -> None:
        """Resize a windowed window (in screen coordinates), as dragging its corner would."""
        self._glfw.set_window_size(self._window, *size_wh)

    def set_title(self, title: str) -> None:
        self._glfw.set_window_title(self._window, title)

    def close(self) -> None:
        """Free the GL objects, the window and (if no other window is open) glfw. Safe to call twice."""
        if self._glfw is None:
            return
        if self._ctx is not None:
            self._ctx.release()  # with it, every texture, framebuffer and program made in it
        if self._window:
            self._glfw.destroy_window(self._window)
        _Glfw.release(self._glfw)
        self._glfw = self._window = self._ctx = None

    def __enter__(self) -> "LiveWindow":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _key_event(self, window, key: int, scancode: int, action: int, mods: int) -> None:
        """glfw's key callback: a press (not a release or a held key's repeats) becomes a named key for `on_key`."""
        if action != self._glfw.PRESS or self.on_key is None or key not in self._key_names:
            return
        name = self._glfw.get_key_name(key, scancode) or self._key_names[key]  # printable keys: the layout's own character
        self.on_key("".join(f"{modifier}+" for modifier, bit in MODIFIER_NAMES if mods & bit) + name)

    def _upload(self, frame: np.ndarray) -> None:
        height, width, _ = frame.shape
        if self._canvas is None or self._canvas.size != (width, height):  # a new layout: a new texture
            if self._canvas is not None:
                self._canvas.release()
            self._canvas = self._ctx.texture((width, height), 3, alignment=1)
        self._canvas.write(np.ascontiguousarray(frame))

    def _set_overlay(self, lines: list[str]) -> None:
        """Render the overlay's text into its texture, only when the text or the window's height changed."""
        font_px = max(12, self.framebuffer_size_wh[1] // OVERLAY_LINES_PER_HEIGHT)
        key = (tuple(lines), font_px)
        if key == self._overlay_lines:
            return
        self._overlay_lines = key
        if self._overlay is not None:
            self._overlay.release()
            self._overlay = None
        if lines:
            image = overlay_image(lines, font_px)
            self._overlay = self._ctx.texture(image.shape[1::-1], 4, np.ascontiguousarray(image), alignment=1)

    def _draw(self) -> None:
        """The canvas resampled into its letterbox, then the overlay, into the back buffer."""
        ctx, screen_wh = self._ctx, self.framebuffer_size_wh
        if min(screen_wh) == 0:  # minimised: nothing to draw into
            return
        ctx.screen.use()
        ctx.viewport = (0, 0, *screen_wh)
        ctx.clear(0.0, 0.0, 0.0)  # the bars
        self._resample(self._canvas, letterbox(self._canvas.size, screen_wh), self.filter)
        if self._overlay is not None:
            overlay_w, overlay_h = self._overlay.size
            ctx.enable(ctx.BLEND)
            ctx.blend_func = ctx.SRC_ALPHA, ctx.ONE_MINUS_SRC_ALPHA
            self._resample(self._overlay, (0, screen_wh[1] - overlay_h, overlay_w, overlay_h), "nearest")  # top left, 1:1
            ctx.disable(ctx.BLEND)

    def _resample(self, source, rect_px: tuple[int, int, int, int], filter: str) -> None:
        """Draw `source` (a texture) scaled into `rect_px` (x, y, width, height; y of its bottom row)."""
        (source_w, source_h), (_, _, width, height) = source.size, rect_px
        step = (source_w / width, source_h / height)
        taps = 1 if filter == "nearest" else 2 * math.ceil(KERNEL_SUPPORT_PX[filter] * max(1.0, *step))
        if (filter, taps) not in self._quads:  # upscaling needs one shader per filter; shrinking, one per kernel width
            program = self._ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=_fragment_shader(filter, taps))
            self._quads[filter, taps] = self._ctx.vertex_array(program, [])
        quad = self._quads[filter, taps]
        source.use(0)
        quad.program["rect_px"].value = rect_px
        quad.program["step"].value = step
        self._ctx.viewport = rect_px
        quad.render(self._ctx.TRIANGLE_STRIP, vertices=4)


def _fragment_shader(filter: str, taps: int) -> str:
    defines = f"#define {filter.upper()}\n#define TAPS {taps}\n#define BICUBIC_A ({BICUBIC_A!r})\n"
    version, body = FRAGMENT_SHADER.strip().split("\n", 1)
    return f"{version}\n{defines}{body}"


def overlay_image(lines: list[str], font_px: int) -> np.ndarray:
    """(h, w, 4) uint8: the lines in white on a translucent dark box just large enough for them."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_px)
    margin_px, spacing_px = font_px // 2, font_px // 4
    text = "\n".join(lines)
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    _, _, right, bottom = measure.multiline_textbbox((0, 0), text, font=font, spacing=spacing_px)
    image = Image.new("RGBA", (right + 2 * margin_px, bottom + 2 * margin_px), (0, 0, 0, OVERLAY_ALPHA))
    ImageDraw.Draw(image).multiline_text((margin_px, margin_px), text, font=font, fill=(255, 255, 255, 255), spacing=spacing_px)
    return np.asarray(image)


def save_screenshot(
    path: Path, frame: np.ndarray, overlay: list[str] | None = None, size_wh=(1280, 720), filter="bicubic"
) -> Path:
    """A PNG of the window showing `frame` (and the overlay): the README's picture of the live window."""
    with LiveWindow(size_wh=size_wh, filter=filter, vsync=False) as window:
        window.show(frame, overlay)
        pixels = window.read_pixels()
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "a screenshot") as partial:
        Image.fromarray(pixels).save(partial, format="PNG")
    return path
