"""particles: glowing points moving on closed paths, drawn with their recent past as a fading trail.

Trails are drawn from past positions, not from feedback between frames, so a clip's first frame
already has its trails and the loop has no seam. A style gives `positions(phase)`: positions
(n, 2) in centred units and brightness (n,).
"""

import math
from collections.abc import Callable

import numpy as np

from vjgan.footage.synth.light import Clip, dark_backdrop, palette_colours, splat_points

TRAIL_SAMPLES = 16  # past positions drawn per particle
TRAIL_FRAMES_PER_SAMPLE = 0.5  # spacing of the trail samples, frames
DOT_RADIUS_FRACTION = 1 / 240  # dot radius as a fraction of the frame's short side (1.5 px at 360p)


def particle_frames(clip: Clip, positions: Callable, colours: np.ndarray) -> Callable:
    """A frame function for particles with `colours` (3, n) whose `positions(phase) -> (xy (n, 2), brightness (n,))`."""
    width, height = clip.frame_size_wh
    radius_px = min(width, height) * DOT_RADIUS_FRACTION
    if radius_px < 1:  # dots of at least a pixel, dimmed so small frames hold as much light as large ones
        colours, radius_px = colours * radius_px**2, 1.0
    backdrop = dark_backdrop(clip, 0.05)
    step = 2 * math.pi * TRAIL_FRAMES_PER_SAMPLE / clip.n_frames
    fade = np.exp(-np.arange(TRAIL_SAMPLES, dtype=np.float32) * (4.0 / TRAIL_SAMPLES))  # (T,)

    def draw(phase: float) -> np.ndarray:
        samples = [positions(phase - j * step) for j in range(TRAIL_SAMPLES)]
        xy = np.concatenate([s[0] for s in samples]) * clip.half_side_px + (width / 2, height / 2)  # (T * n, 2) px
        brightness = np.concatenate([s[1] * fade[j] for j, s in enumerate(samples)])  # (T * n,)
        points = np.tile(colours, TRAIL_SAMPLES) * brightness  # (3, T * n)
        return splat_points(xy, points, clip.frame_size_wh, radius_px) + backdrop

    return draw


def render_swarm(clip: Clip, rng: np.random.Generator):
    """Fireflies: a flock drifting on a Lissajous path, each firefly circling it on its own tilted ellipse."""
    n = int(rng.integers(400, 650))
    flock_amp = rng.uniform([0.3, 0.15], [0.6, 0.3])
    flock_cycles = np.array([clip.cycles(0.1), clip.cycles(0.2)])
    flock_offset = rng.uniform(0, 2 * math.pi, 2)
    radius = (rng.uniform(0.15, 1.0, n) * rng.uniform(0.9, 1.2)).astype(np.float32)
    squash = rng.uniform(0.3, 1.0, n)  # the ellipse's minor / major axis
    tilt = rng.uniform(0, math.pi, n)
    major_axis = np.stack([np.cos(tilt), np.sin(tilt)], -1) * radius[:, None]  # (n, 2)
    minor_axis = np.stack([-np.sin(tilt), np.cos(tilt)], -1) * (radius * squash)[:, None]  # (n, 2)
    inner_speedup = np.where(radius < 0.5, rng.integers(1, 3, n), 1)  # only small orbits run double laps
    laps = rng.choice([-1, 1], n) * inner_speedup * clip.cycles(0.25)  # whole laps per clip
    start = rng.uniform(0, 2 * math.pi, n)
    twinkle_cycles = rng.integers(1, clip.cycles(1.0) + 2, n)
    twinkle_offset = rng.uniform(0, 2 * math.pi, n)
    colours = palette_colours(clip.palette, rng.uniform(0, 3, n)) * 5.0

    def positions(phase):
        flock = flock_amp * np.cos(flock_cycles * phase + flock_offset)
        angle = laps * phase + start
        orbit = np.cos(angle)[:, None] * major_axis + np.sin(angle)[:, None] * minor_axis  # (n, 2)
        brightness = 0.55 + 0.45 * np.cos(twinkle_cycles * phase + twinkle_offset)
        return (flock + orbit).astype(np.float32), brightness.astype(np.float32)

    return particle_frames(clip, positions, colours), 1.2


def render_galaxy(clip: Clip, rng: np.random.Generator):
    """A tilted spiral galaxy: inner stars turn faster than outer ones, and every star turns a
    whole number of times per clip, so the arms wind up and unwind back into place."""
    n = int(rng.integers(700, 1100))
    arms = int(rng.integers(2, 5))
    radius = (rng.uniform(0.03, 1.0, n) ** 1.3 * 1.5).astype(np.float32)
    arm_angle = rng.integers(0, arms, n) * (2 * math.pi / arms) + radius * rng.uniform(2, 4) + rng.normal(0, 0.25, n)
    turns = np.maximum(1, np.round(clip.cycles(0.25) / (0.4 + radius))) * rng.choice([-1, 1])
    tilt = rng.uniform(0.45, 0.75)
    breathe_cycles = clip.cycles(0.25)
    colours = palette_colours(clip.palette, radius / 1.5 * 3) * (0.8 + 1.6 * np.exp(-radius * 2))

    def positions(phase):
        angle = arm_angle + turns * phase
        r = radius * (1 + 0.08 * math.sin(breathe_cycles * phase))
        xy = np.stack([r * np.cos(angle), r * np.sin(angle) * tilt], -1)
        return xy.astype(np.float32), np.ones(n, np.float32)

    return particle_frames(clip, positions, colours), 0.8


def render_warp(clip: Clip, rng: np.random.Generator):
    """A warp-speed starfield: stars fly out from the centre along rays, fading in from the distance."""
    n = int(rng.integers(350, 550))
    direction = rng.uniform(0, 2 * math.pi, n)
    depth0 = rng.uniform(0, 1, n)
    passes = rng.integers(1, clip.cycles(0.5) + 1, n)  # flights per clip, whole numbers
    sway = rng.uniform(0.05, 0.2)
    sway_cycles = clip.cycles(0.2)
    colours = palette_colours(clip.palette, rng.uniform(0, 3, n)) * 2.0

    def positions(phase):
        depth = (depth0 + passes * phase / (2 * math.pi)) % 1.0  # 0 far -> 1 at the camera
        r = 0.08 / (1.03 - depth)
        centre = sway * np.array([math.cos(sway_cycles * phase), math.sin(sway_cycles * phase)])
        xy = np.stack([r * np.cos(direction), r * np.sin(direction)], -1) + centre * (1 - depth[:, None])
        return xy.astype(np.float32), (depth**1.5 * 2).astype(np.float32)

    return particle_frames(clip, positions, colours), 1.0


STYLES = (render_swarm, render_galaxy, render_warp)
