"""typo: kinetic typography, words from Pillow fonts punching, scrolling and stretching on a beat grid
with a whole number of beats per clip."""

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vjgan.footage.synth.light import Clip, dark_backdrop, palette_colours, tint

WORDS = (
    "BASS", "DROP", "RAVE", "NEON", "PULSE", "ACID", "TECHNO", "HYPE", "LIGHT", "DREAM", "GLITCH",
    "FLOW", "WAVE", "LOUD", "NIGHT", "ECHO", "SYNC", "BOOM", "JUMP", "DANCE", "FEEL", "LOOP", "VIBE",
)  # fmt: skip
BOLD_FONT_FILES = ("DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "LiberationSans-Bold.ttf")
BEATS_PER_SECOND = 2.0  # 120 bpm


@functools.lru_cache(maxsize=32)
def bold_font(size_px: int) -> ImageFont.FreeTypeFont:
    """A bold system font when one is installed, else Pillow's built-in scalable font."""
    for name in BOLD_FONT_FILES:
        try:
            return ImageFont.truetype(name, size_px)
        except OSError:
            continue
    return ImageFont.load_default(size=size_px)


def word_mask(word: str, size_px: int, outline_px: int = 0) -> np.ndarray:
    """`word` drawn white on black, cropped to its ink, (h, w) float32 in [0, 1]; with
    `outline_px`, only a hollow outline of that thickness."""
    font = bold_font(max(8, size_px))
    left, top, right, bottom = font.getbbox(word, stroke_width=outline_px)
    image = Image.new("L", (right - left + 2, bottom - top + 2))
    fill = 0 if outline_px else 255
    ImageDraw.Draw(image).text((1 - left, 1 - top), word, fill=fill, font=font, stroke_width=outline_px, stroke_fill=255)
    return np.asarray(image, np.float32) / 255


def scaled(mask: np.ndarray, scale_wh: tuple[float, float]) -> np.ndarray:
    """`mask` (h, w) resized by (x, y) factors `scale_wh` (each side at least 1 px)."""
    size_wh = (max(1, round(mask.shape[1] * scale_wh[0])), max(1, round(mask.shape[0] * scale_wh[1])))
    return np.asarray(Image.fromarray(mask).resize(size_wh, Image.BILINEAR))


def add_centred(light: np.ndarray, mask: np.ndarray, colour: np.ndarray, centre_xy: tuple[float, float]) -> None:
    """Add `mask` (h, w) tinted `colour` (3,) into planes `light` (3, H, W), centred at `centre_xy`, clipped to the frame."""
    height, width = light.shape[1:]
    top, left = round(centre_xy[1] - mask.shape[0] / 2), round(centre_xy[0] - mask.shape[1] / 2)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + mask.shape[0], height), min(left + mask.shape[1], width)
    if y0 < y1 and x0 < x1:
        light[:, y0:y1, x0:x1] += tint(colour, mask[y0 - top : y1 - top, x0 - left : x1 - left])


def beat_grid(clip: Clip, phase: float) -> tuple[int, float]:
    """(beat number within the clip, time since that beat as a fraction of a beat) at `phase`.
    Beat numbers wrap at the clip's whole number of beats, so anything keyed on them loops."""
    n_beats = clip.cycles(BEATS_PER_SECOND)
    position = n_beats * phase / (2 * math.pi)
    beat = math.floor(position + 1e-6)
    return beat % n_beats, max(0.0, position - beat)


def rgb_split(light: np.ndarray, shift_px: int) -> np.ndarray:
    """Red and blue planes pushed `shift_px` apart sideways: the chromatic-aberration glitch."""
    if shift_px:
        light[0] = np.roll(light[0], shift_px, axis=1)
        light[2] = np.roll(light[2], -shift_px, axis=1)
    return light


def render_punch(clip: Clip, rng: np.random.Generator):
    """One big word per beat, punching in from oversize with a flash and outlined echoes behind it."""
    width, height = clip.frame_size_wh
    words = rng.choice(WORDS, size=clip.cycles(BEATS_PER_SECOND))  # one per beat, repeating each clip
    size_px = round(height * 0.4)
    fills = {w: word_mask(w, size_px) for w in set(words)}
    outlines = {w: word_mask(w, size_px, outline_px=max(1, size_px // 18)) for w in set(words)}
    fit = {w: min(1.0, width * 0.8 / m.shape[1]) for w, m in fills.items()}  # long words shrink to 80% width
    backdrop = dark_backdrop(clip, 0.06)
    _, ys = clip.centred_coords()
    bars = np.cos(ys * np.float32(rng.uniform(20, 40))) ** 8  # scanline bars, lit on the beat
    centre = (width / 2, height / 2)

    def draw(phase):
        beat, since = beat_grid(clip, phase)
        word = words[beat % len(words)]
        colour = clip.palette[beat % 3]
        punch = math.exp(-since * 7)
        light = backdrop + tint(clip.palette[(beat + 1) % 3] * (0.25 * punch), bars)
        for echo in (3, 2, 1):  # outlined copies, larger and dimmer, behind the word
            scale = fit[word] * (1 + 0.2 * echo * (0.4 + punch))
            add_centred(light, scaled(outlines[word], (scale, scale)), colour * (0.9 / echo), centre)
        scale = fit[word] * (1 + 0.3 * punch)
        add_centred(light, scaled(fills[word], (scale, scale)), colour * (1.5 + 3 * punch), centre)
        return rgb_split(light, round(punch * width * 0.012))

    return draw, 0.9


def render_marquee(clip: Clip, rng: np.random.Generator):
    """Rows of words scrolling in alternating directions; one row flashes on each beat."""
    width, height = clip.frame_size_wh
    n_rows = int(rng.integers(4, 7))
    row_px = height / n_rows
    strips = []
    for _ in range(n_rows):
        text = "  ".join(rng.choice(WORDS, size=int(rng.integers(3, 6)))) + "  "
        strip = word_mask(text, round(row_px * 0.8))
        strips.append(scaled(strip, (row_px * 0.8 / strip.shape[0],) * 2))
    # Each row scrolls a whole number of its own lengths per clip, at 120-260 px/s at 360p.
    passes = [clip.cycles(rng.uniform(0.33, 0.72) * height / s.shape[1]) * (-1) ** row for row, s in enumerate(strips)]
    columns = np.arange(width)
    backdrop = dark_backdrop(clip, 0.05)
    order = rng.permutation(n_rows)

    def draw(phase):
        beat, since = beat_grid(clip, phase)
        lit = order[beat % n_rows]
        light = backdrop.copy()
        for row, (strip, n_pass) in enumerate(zip(strips, passes)):
            offset = round(n_pass * strip.shape[1] * phase / (2 * math.pi))
            tile = strip[:, (columns + offset) % strip.shape[1]]  # (h_row, W), wrapped around
            flash = 1.2 + 3.5 * math.exp(-since * 5) if row == lit else 0.45
            add_centred(light, tile, clip.palette[row % 3] * flash, (width / 2, (row + 0.5) * row_px))
        return light

    return draw, 0.7


def render_stretch(clip: Clip, rng: np.random.Generator):
    """A word stacked in rows that squash and stretch in a travelling wave; a new word every bar."""
    width, height = clip.frame_size_wh
    n_rows = int(rng.integers(3, 6))
    row_px = height / n_rows
    words = rng.choice(WORDS, size=max(1, clip.cycles(BEATS_PER_SECOND) // 4))  # one per four-beat bar
    masks = {w: word_mask(w, round(row_px)) for w in set(words)}
    wave = clip.cycles(0.5)
    backdrop = dark_backdrop(clip, 0.05)

    def draw(phase):
        beat, since = beat_grid(clip, phase)
        mask = masks[words[(beat // 4) % len(words)]]
        light = backdrop.copy()
        for row in range(n_rows):
            stretch = 0.5 + 0.5 * math.sin(wave * phase + row * 2 * math.pi / n_rows)
            scale_wh = (width * (0.35 + 0.6 * stretch) / mask.shape[1], row_px * 0.92 / mask.shape[0])
            lit = 1.3 + 3 * math.exp(-since * 6) if beat % n_rows == row else 0.6 + 0.5 * stretch
            colour = palette_colours(clip.palette, row * 0.7 + 3 * phase / (2 * math.pi))
            add_centred(light, scaled(mask, scale_wh), colour * lit, (width / 2, (row + 0.5) * row_px))
        return light

    return draw, 0.8


STYLES = (render_punch, render_marquee, render_stretch)
