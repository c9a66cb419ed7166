"""geometry: neon line fields in polar coordinates (polygon zooms, tunnels, mandalas).

Zoom and rotation advance by whole ring spacings and whole symmetry steps per clip, so the last
frame leads straight into the first.
"""

import math

import numpy as np

from vjgan.footage.synth.light import Clip, dark_backdrop, palette_colours, thin_line, tint, wrap


def polar_coords(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Radius and angle of every pixel about the frame centre, (H, W) float32 each."""
    xs, ys = clip.centred_coords()
    return np.hypot(xs, ys) + np.float32(1e-4), np.arctan2(ys, xs)


def render_polygon_zoom(clip: Clip, rng: np.random.Generator):
    """Nested neon polygons rushing outwards for ever (a zoom in log-polar space), twisting into a spiral."""
    sides = int(rng.integers(3, 9))
    sector = 2 * math.pi / sides
    r, theta = polar_coords(clip)
    log_r = np.log(r)
    rings_per_unit = rng.uniform(2.5, 4.0)  # rings per e-fold of radius
    zoom_rings = clip.cycles(rng.uniform(0.8, 1.6), multiple=3)  # a multiple of 3 keeps ring colours in step
    spin_steps = clip.cycles(rng.uniform(0.1, 0.4)) * rng.choice([-1, 1])  # whole 1/sides turns per clip
    twisted = theta + rng.uniform(-0.6, 0.6) * log_r
    width = rng.uniform(0.05, 0.08)
    fog = (1 - np.exp(-r * 4)) * 2.2  # the vanishing point fades to black
    backdrop = dark_backdrop(clip, 0.04)

    def draw(phase):
        angle = wrap(twisted + np.float32(spin_steps * phase / sides), sector) - np.float32(sector / 2)
        log_polygon_r = log_r + np.log(np.cos(angle) * np.float32(1 / math.cos(math.pi / sides)))  # 0 on the unit polygon
        rings = log_polygon_r * np.float32(rings_per_unit) - np.float32(zoom_rings * phase / (2 * math.pi))
        index = np.floor(rings)
        line = thin_line(rings - index - np.float32(0.5), width) * fog
        return palette_colours(clip.palette, index) * line + backdrop

    return draw, 0.9


def render_tunnel(clip: Clip, rng: np.random.Generator):
    """Flying down a neon grid tunnel: rings rush past, the walls' lines turn, the far end fades into fog."""
    r, theta = polar_coords(clip)
    depth = np.float32(rng.uniform(0.5, 0.8)) / r
    spokes = 2 * int(rng.integers(4, 11))  # even, like `rush`, so the checker shading's parity loops too
    rush = clip.cycles(rng.uniform(1.5, 3.0), multiple=2)  # rings passing per clip
    spin = clip.cycles(rng.uniform(0.05, 0.2)) * rng.choice([-1, 1])
    around = theta * np.float32(spokes / (2 * math.pi))
    fog = np.exp(-depth * np.float32(rng.uniform(0.3, 0.5)))
    ring_colour, spoke_colour = clip.palette[0] * 2.2, clip.palette[1] * 1.4
    ring_width = np.float32(0.04) * np.minimum(depth, 1)  # rings thin out as they come close

    def draw(phase):
        along = depth * 2 + np.float32(rush * phase / (2 * math.pi))
        across = around + np.float32(spin * spokes * phase / (2 * math.pi))
        ring = np.exp(-np.square((along - np.round(along)) / ring_width))
        spoke = thin_line(across - np.round(across), 0.04)
        checker = wrap(np.floor(along) + np.floor(across), 2) * np.float32(0.06)
        return (tint(ring_colour, ring) + tint(spoke_colour, spoke + checker)) * fog

    return draw, 0.8


def render_mandala(clip: Clip, rng: np.random.Generator):
    """A kaleidoscope: contour lines of a wave field folded into k mirrored sectors, breathing and turning."""
    r, theta = polar_coords(clip)
    folds = int(rng.integers(5, 13))
    sector = 2 * math.pi / folds
    ripple_log_r = np.log(r) * np.float32(rng.uniform(4, 8))
    ripple_r = r * np.float32(rng.uniform(7, 12))
    petals = rng.uniform(1.5, 4)
    flow = clip.cycles(rng.uniform(0.4, 0.9))
    spin = clip.cycles(rng.uniform(0.05, 0.2)) * rng.choice([-1, 1])
    breathe = clip.cycles(0.25)
    backdrop = dark_backdrop(clip, 0.05)
    fog = 1 - np.exp(-r * 6)

    def draw(phase):
        folded = np.abs(wrap(theta + np.float32(spin * phase / folds), sector) - np.float32(sector / 2)) * folds
        bloom = np.float32(petals * (1 + 0.3 * math.sin(breathe * phase)))
        a = thin_line(np.sin(ripple_log_r - np.float32(flow * phase) + np.cos(folded) * bloom), 0.12) * fog
        b = thin_line(np.cos(ripple_r + np.float32(flow * phase) + folded * 2), 0.1) * fog
        light = tint(clip.palette[0] * 2, a) + tint(clip.palette[1] * 0.9, b)
        return light + tint(clip.palette[2] * 4, a * b) + backdrop  # crossings flare in the third colour

    return draw, 1.0


STYLES = (render_polygon_zoom, render_tunnel, render_mandala)
