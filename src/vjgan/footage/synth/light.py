"""Drawing in linear light: palettes, soft lines and dots, glow, and the tone map to 8-bit frames.

Styles draw float32 light as channel-first planes (3, H, W), because numpy broadcasts a colour
over whole rows far faster than over a trailing axis of three. `add_glow` adds a halo blurred at
quarter resolution (8-bit Pillow filters, fast), and `tone_map` turns light into uint8 frames with
1 - exp(-light), so bright cores burn white and their edges keep the neon colour.
"""

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

GLOW_SCALE = 4  # the halo is blurred at 1 / GLOW_SCALE of the frame size
GLOW_RANGE = 2.0  # linear light above this does not widen the halo (it is stored in 8 bits)


@dataclass(frozen=True)
class Clip:
    """What every style needs to know about the clip it draws."""

    frame_size_wh: tuple[int, int]
    n_frames: int
    seconds: float
    palette: np.ndarray  # (3, 3) float32: three RGB colours in [0, 1], saturated neon hues

    def cycles(self, per_second: float, multiple: int = 1) -> int:
        """Whole cycles per clip nearest to `per_second` (at least one, and a multiple of `multiple`),
        so that motion given as a speed still lands exactly where it started when the clip loops."""
        return multiple * max(1, round(per_second * self.seconds / multiple))

    @property
    def half_side_px(self) -> float:
        """Pixels per unit of `centred_coords`: half the frame's short side."""
        return min(self.frame_size_wh) / 2

    def centred_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates, (H, W) float32 each, with the frame centre at 0 and +-1 at the
        edges of the centred square (the part that ingest's centre crop keeps)."""
        width, height = self.frame_size_wh
        xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / self.half_side_px
        ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / self.half_side_px
        return np.broadcast_to(xs, (height, width)), np.broadcast_to(ys[:, None], (height, width))


def neon_palette(rng: np.random.Generator) -> np.ndarray:
    """Three fully saturated hues, (3, 3) float32: a base hue with a complementary, triadic or
    analogous scheme around it, as VJ palettes usually are."""
    base = rng.uniform(0, 1)
    offsets = [(0.5, 0.58), (1 / 3, 2 / 3), (0.08, 0.16), (0.45, 0.12)][rng.integers(4)]
    hues = [base, base + offsets[0], base + offsets[1]]
    return np.array([colorsys.hsv_to_rgb(h % 1.0, 1.0, 1.0) for h in hues], np.float32)


def palette_colours(palette: np.ndarray, position: np.ndarray | float) -> np.ndarray:
    """Colours around the palette loop at `position` (any shape; palette[k] at k, period 3),
    (3,) + position's shape, float32 in [0, 1].

    The loop is the trigonometric interpolant through the three colours (exact at the integers,
    smooth between), which costs one cosine and one sine per pixel instead of table look-ups.
    """
    angles = np.arange(3) * (2 * np.pi / 3)
    mean = palette.mean(axis=0)  # (3,) RGB
    cos_coef = (2 / 3) * (np.cos(angles)[:, None] * palette).sum(axis=0)
    sin_coef = (2 / 3) * (np.sin(angles)[:, None] * palette).sum(axis=0)
    angle = np.asarray(position, np.float32) * np.float32(2 * np.pi / 3)
    cos, sin = np.cos(angle), np.sin(angle)
    colours = np.empty((3,) + angle.shape, np.float32)
    for c in range(3):
        np.multiply(cos, np.float32(cos_coef[c]), out=colours[c, ...])
        colours[c, ...] += sin * np.float32(sin_coef[c]) + np.float32(mean[c])
    return np.maximum(colours, 0, out=colours)


def tint(colour: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """`intensity` (H, W) coloured by `colour` (3,) or (3, H, W): planes (3, H, W)."""
    colour = np.asarray(colour, np.float32)
    return (colour[:, None, None] if colour.ndim == 1 else colour) * intensity


def thin_line(distance: np.ndarray, width: float) -> np.ndarray:
    """A soft neon line profile: 1 on the line, falling off over `width` (same units as distance)."""
    return np.exp(-np.square(distance * np.float32(1 / width)))


def wrap(value: np.ndarray, period: float) -> np.ndarray:
    """`value` modulo `period`, in [0, period) (several times faster than np.mod on float32)."""
    return value - np.floor(value * np.float32(1 / period)) * np.float32(period)


def splat_points(xy: np.ndarray, colours: np.ndarray, size_wh: tuple[int, int], radius_px: float) -> np.ndarray:
    """Points at float pixel positions `xy` (n, 2) with `colours` (3, n), drawn as soft dots
    (a separable tent of `radius_px`, peak 1) into black planes (3, h, w) float32."""
    width, height = size_wh
    offsets = np.arange(-math.floor(radius_px), math.floor(radius_px) + 1)  # (K,): covers the tent from any sub-pixel position
    pixel = np.floor(xy).astype(np.int64)[:, :, None] + offsets  # (n, 2, K): pixels each dot covers on each axis
    weight = np.maximum(0, 1 - np.abs(pixel + 0.5 - xy[:, :, None]) / radius_px).astype(np.float32)  # (n, 2, K)
    weight *= (pixel >= 0) & (pixel < np.array([width, height])[:, None])  # off-frame pixels get nothing
    flat_index = np.clip(pixel[:, 1, :, None], 0, height - 1) * width + np.clip(pixel[:, 0, None, :], 0, width - 1)
    flat_weight = weight[:, 1, :, None] * weight[:, 0, None, :]  # (n, K, K)
    flat_index, flat_weight = flat_index.ravel(), flat_weight.ravel()
    planes = np.empty((3, height, width), np.float32)
    for c in range(3):
        dot_colour = np.repeat(colours[c], len(offsets) ** 2) * flat_weight  # (n * K * K,)
        planes[c] = np.bincount(flat_index, weights=dot_colour, minlength=height * width).reshape(height, width)
    return planes


def add_glow(light: np.ndarray, gain: float) -> np.ndarray:
    """`light` (3, H, W) plus a soft halo: the image blurred at quarter resolution, times `gain`.

    The halo goes through 8-bit Pillow images (reduce, Gaussian blur, bilinear resize), several
    times faster than float32 numpy for the same look; the quantisation disappears in the blur.
    """
    height, width = light.shape[1:]
    quantised = np.minimum(light * np.float32(255 / GLOW_RANGE), 255).astype(np.uint8)  # light is >= 0
    for c in range(3):
        small = Image.fromarray(quantised[c]).reduce(GLOW_SCALE)
        blurred = small.filter(ImageFilter.GaussianBlur(max(1.0, min(small.size) / 20)))
        halo = np.asarray(blurred.resize((width, height), Image.BILINEAR), np.float32)
        light[c] += halo * np.float32(gain * GLOW_RANGE / 255)
    return light


def tone_map(light: np.ndarray) -> np.ndarray:
    """Linear light planes (3, H, W) -> frame (H, W, 3) uint8 through 1 - exp(-light), so
    overlapping glows saturate towards white instead of clipping to flat colour."""
    np.multiply(light, -1, out=light)
    np.exp(light, out=light)
    np.multiply(light, -255, out=light)
    light += 255.5
    return np.ascontiguousarray(light.astype(np.uint8).transpose(1, 2, 0))


def dark_backdrop(clip: Clip, brightness: float) -> np.ndarray:
    """A faint radial wash of the palette's first colour, planes (3, H, W), so black is never flat."""
    xs, ys = clip.centred_coords()
    return tint(clip.palette[0] * brightness, np.exp(-(np.square(xs) + np.square(ys)) * 0.8))
