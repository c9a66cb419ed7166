"""Paths through latent space: seamless loops, keyframe walks and music-driven motion.

Every path lives in Gaussian space (the model converts once, with `latent_from_gaussian`) and keeps
to the sphere of radius sqrt(z_dim), where almost all of a standard normal's mass lies, so each
frame is a latent the generator has seen the like of. Paths are pure functions of their arguments
and a seed: (T, z_dim) float32 tensors on the CPU, computed in float64.

The loop is woven from a few great circles in mutually orthogonal planes with frequencies 1, 2, 3...
(a torus knot on the sphere): its radius and its speed are exactly constant, so the step from the
last frame back to the first is one more ordinary step. `loop_curve` evaluates it at any phase, so
motion can speed up, slow down or jump (the audio path) and stay on the same smooth curve.

A beat loop is that loop with a kick on every beat of a metronome whose beats divide it evenly, the
first on frame 0: the loop is still the lowest period, the kicks repeat with it, and the step from
the last frame back to the first is the step into a beat, like the step into any other beat.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from vjgan.render.audio import AnalysisConfig, AudioControls, beat_frames, beat_pulses

LOOP_HARMONICS = 3  # great circles a loop is woven from; each adds a faster, smaller wobble
ENDLESS_STREAMS = 2  # a seed's random streams 0 and 1 are a clip's loop and beat targets; a live walk's and beats' follow


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation from `a` (t = 0) to `b` (t = 1): (..., z_dim), in `a`'s dtype.

    `a`, `b`: (..., z_dim), broadcastable; `t`: float or (...) broadcastable to their leading dims.
    Linear interpolation between Gaussian latents passes through atypically short vectors (the
    generator shows a washed-out average there); the great circle keeps the norm. The angle is
    2 atan2(|a^ - b^|, |a^ + b^|) of the unit vectors, accurate even when they nearly coincide; where
    its sine vanishes (parallel or exactly opposite vectors) no circle is defined and the straight
    line is used.
    """
    a64, b64 = a.double(), b.double()
    t64 = torch.as_tensor(t, dtype=torch.float64)[..., None]  # (..., 1)
    a_unit = a64 / a64.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    b_unit = b64 / b64.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    angle = 2 * torch.atan2((a_unit - b_unit).norm(dim=-1, keepdim=True), (a_unit + b_unit).norm(dim=-1, keepdim=True))
    sin_angle = torch.sin(angle)  # (..., 1)
    straight = sin_angle < 1e-6
    safe_sin = torch.where(straight, torch.ones_like(sin_angle), sin_angle)
    weight_a = torch.where(straight, 1 - t64, torch.sin((1 - t64) * angle) / safe_sin)
    weight_b = torch.where(straight, t64, torch.sin(t64 * angle) / safe_sin)
    return (weight_a * a64 + weight_b * b64).to(a.dtype)


def ease_linear(t: torch.Tensor) -> torch.Tensor:
    return t


def ease_in_out_sine(t: torch.Tensor) -> torch.Tensor:
    """Gentle: speed follows a sine arch, zero at both ends."""
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def ease_in_out_cubic(t: torch.Tensor) -> torch.Tensor:
    """Lingers longer on each keyframe than the sine, then glides faster between them."""
    return torch.where(t < 0.5, 4 * t**3, 1 - (2 - 2 * t) ** 3 / 2)


# Names a user can pick an easing by (the CLI's choices).
EASINGS = {"linear": ease_linear, "sine": ease_in_out_sine, "cubic": ease_in_out_cubic}


def loop_curve(phase: torch.Tensor, z_dim: int, seed: int, harmonics: int = LOOP_HARMONICS) -> torch.Tensor:
    """The closed curve of a seed at `phase` (T,) in turns (1 turn = the whole loop): (T, z_dim) float32.

    z(phase) = sum_k a_k (u_k cos(2 pi k phase) + v_k sin(2 pi k phase)), with the u_k, v_k
    orthonormal: |z| = sqrt(z_dim) and |dz/dphase| are the same at every phase.
    """
    amplitudes = _circle_amplitudes(harmonics, z_dim) * math.sqrt(z_dim)  # (circles,)
    n_circles = len(amplitudes)
    basis = _loop_basis(z_dim, seed, n_circles)  # (z_dim, 2 * circles)
    frequencies = torch.arange(1, n_circles + 1, dtype=torch.float64)  # (circles,)
    angles = 2 * math.pi * torch.as_tensor(phase, dtype=torch.float64)[:, None] * frequencies  # (T, circles)
    coordinates = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1) * amplitudes[:, None]  # (T, circles, 2)
    return (coordinates.reshape(len(angles), 2 * n_circles) @ basis.T).float()  # (T, z_dim)


@lru_cache(maxsize=1024)
def _loop_basis(z_dim: int, seed: int, n_circles: int) -> torch.Tensor:
    """The seed's loop plane pairs: (z_dim, 2 * circles) orthonormal columns, uniformly random (Haar). Made
    once per seed: the live mode asks for a point of each tile's loop every frame. Read-only (cached)."""
    gaussian = torch.randn(z_dim, 2 * n_circles, generator=_generator(seed), dtype=torch.float64)
    basis, triangular = torch.linalg.qr(gaussian)  # (z_dim, 2 * circles), orthonormal columns
    return basis * torch.sign(torch.diagonal(triangular))


def loop_path(n_frames: int, z_dim: int, seed: int, harmonics: int = LOOP_HARMONICS) -> torch.Tensor:
    """A seamless loop of `n_frames`: (n_frames, z_dim); frame n_frames would be frame 0 again."""
    return loop_curve(torch.arange(n_frames, dtype=torch.float64) / n_frames, z_dim, seed, harmonics)


def loop_turn_degrees(z_dim: int, harmonics: int = LOOP_HARMONICS) -> float:
    """Angle one turn of the loop sweeps on the latent sphere, degrees: speeds are given in degrees
    of arc per second, which mean the same amount of visual change whatever the curve."""
    amplitudes = _circle_amplitudes(harmonics, z_dim)
    frequencies = torch.arange(1, len(amplitudes) + 1, dtype=torch.float64)
    return 360.0 * float(torch.sqrt(((amplitudes * frequencies) ** 2).sum()))


def walk_path(n_frames: int, z_dim: int, keyframes: int, seed: int, easing: str = "cubic", loop: bool = False) -> torch.Tensor:
    """A walk through `keyframes` random latents, eased slerp between each pair: (n_frames, z_dim).

    Every keyframe lies at radius sqrt(z_dim), so with linear easing each segment is crossed at
    constant speed.

    The first frame is the first keyframe and, unless `loop`, the last frame is the last keyframe;
    with `loop` the walk returns to the first keyframe, which frame n_frames would show again.
    """
    if keyframes < 2:
        raise ValueError(f"a walk needs at least 2 keyframes, got {keyframes}")
    if easing not in EASINGS:
        raise ValueError(f"unknown easing '{easing}'; choose one of {', '.join(EASINGS)}")
    keys = _sphere_points(keyframes, z_dim, _generator(seed))  # (K, z_dim)
    n_segments = keyframes if loop else keyframes - 1
    frames = torch.arange(n_frames, dtype=torch.float64)
    position = frames / n_frames * n_segments if loop else frames / max(n_frames - 1, 1) * n_segments  # (T,)
    segment = position.floor().clamp(max=n_segments - 1).long()  # (T,)
    local = EASINGS[easing](position - segment)  # (T,) in [0, 1]
    return slerp(keys[segment], keys[(segment + 1) % keyframes], local).float()  # (T, z_dim)


@lru_cache(maxsize=4096)
def walk_keyframe(seed: int, index: int, z_dim: int) -> torch.Tensor:
    """Keyframe `index` >= 0 of an endless walk of `seed`: (z_dim,) float64 at radius sqrt(z_dim). Each keyframe
    has its own random stream, so a live walk can go on for ever without holding or repeating its keyframes.
    Cached (a live grid asks for every tile's every frame): read-only."""
    return _sphere_points(1, z_dim, _generator(seed, stream=ENDLESS_STREAMS + 2 * index))[0]


@lru_cache(maxsize=4096)
def beat_target(seed: int, index: int, z_dim: int) -> torch.Tensor:
    """The random latent beat `index` >= 0 of an endless performance leans toward: (z_dim,) float64. Cached: read-only."""
    return _sphere_points(1, z_dim, _generator(seed, stream=ENDLESS_STREAMS + 2 * index + 1))[0]


def pulse_toward(path: torch.Tensor, amount: torch.Tensor, target_index: torch.Tensor, seed: int) -> torch.Tensor:
    """Lean each frame of `path` (T, z_dim) `amount` (T,) of the way toward a random latent.

    `target_index` (T,) picks the latent for each frame: one index per pulse (per beat), so every
    pulse pushes the image a new way and then lets it settle back on the path.
    """
    n_targets = int(target_index.max()) + 1 if len(target_index) else 0
    targets = _sphere_points(n_targets, path.shape[1], _generator(seed, stream=1))  # (n_targets, z_dim)
    return slerp(path, targets[target_index].to(path.dtype), amount)


@dataclass(frozen=True)
class AudioMotion:
    """How music moves the latent: speeds in degrees of arc per second on the latent sphere
    (two unrelated images are about 90 degrees apart)."""

    drift_degrees_per_second: float = 8.0  # speed in silence, degrees/s
    loudness_degrees_per_second: float = 40.0  # speed added at full loudness (rms = 1), degrees/s
    beat_pulse: float = 0.2  # fraction of the way toward a random latent each beat leans (slerp t)
    jump_onset: float = 0.95  # normalised onset strength (0-1) whose rising edge makes a jump
    jump_degrees: float = 45.0  # arc skipped along the path at a jump, degrees
    jump_min_gap_seconds: float = 2.0  # least time between two jumps, seconds


def strong_onset_frames(onset: np.ndarray, threshold: float, min_gap_frames: int) -> np.ndarray:
    """Frames where `onset` (T,) rises through `threshold`, at least `min_gap_frames` apart: (J,) int."""
    previous = np.concatenate([[0.0], onset[:-1]])
    crossings = np.flatnonzero((onset >= threshold) & (previous < threshold))
    kept: list[int] = []
    for frame in crossings.tolist():
        if not kept or frame - kept[-1] >= min_gap_frames:
            kept.append(frame)
    return np.asarray(kept, np.int64)


def audio_path(
    controls: AudioControls,
    z_dim: int,
    seed: int,
    motion: AudioMotion = AudioMotion(),
    harmonics: int = LOOP_HARMONICS,
) -> torch.Tensor:
    """A path that moves with the music, one frame per control frame: (controls.n_frames, z_dim).

    It travels along the seed's loop curve at drift + loudness * rms degrees per second (integrated
    frame by frame, so frame k has moved by the speeds of frames 0..k-1), skips ahead on strong
    onsets (on the onset's own frame) and leans toward a new random latent on every beat (fully on
    the beat's frame, then settling as the beat curve decays).
    """
    n_frames, fps = controls.n_frames, controls.fps
    degrees_per_frame = (motion.drift_degrees_per_second + motion.loudness_degrees_per_second * controls.rms) / fps
    travelled_degrees = np.concatenate([[0.0], np.cumsum(degrees_per_frame[:-1], dtype=np.float64)])  # (T,)
    jumps = np.zeros(n_frames)
    min_gap_frames = max(1, round(motion.jump_min_gap_seconds * fps))
    jumps[strong_onset_frames(controls.onset, motion.jump_onset, min_gap_frames)] = motion.jump_degrees
    travelled_degrees += np.cumsum(jumps)
    phase = torch.from_numpy(travelled_degrees / loop_turn_degrees(z_dim, harmonics))  # (T,) turns
    path = loop_curve(phase, z_dim, seed, harmonics)  # (T, z_dim)
    return lean_on_beats(path, controls, motion.beat_pulse, seed)


def lean_on_beats(path: torch.Tensor, controls: AudioControls, beat_pulse: float, seed: int) -> torch.Tensor:
    """`path` (T, z_dim) leaning toward a new random latent on every beat of `controls`: `beat_pulse`
    of the way (slerp t) on the beat's frame, then settling back onto the path as the beat curve decays."""
    n_frames = controls.n_frames
    on_beat = beat_frames(controls.beat_times_seconds, controls.fps, n_frames)
    beat_index = np.searchsorted(on_beat, np.arange(n_frames), side="right") - 1  # (T,), -1 before the first
    amount = torch.from_numpy(beat_pulse * controls.beat.astype(np.float64))  # (T,)
    return pulse_toward(path, amount, torch.from_numpy(np.maximum(beat_index, 0)), seed)


def beat_loop_controls(
    n_frames: int, n_beats: int, fps: float, decay_seconds: float = AnalysisConfig.beat_decay_seconds
) -> AudioControls:
    """A metronome on a loop's frame clock, in `render.audio`'s control format, so the latent kicks and
    the effects of a beat loop are driven exactly as a track's beats drive `render audio`.

    `n_beats` beats divide the `n_frames` evenly (beat k at k * n_frames / n_beats frames, on the nearest
    frame), the first on frame 0, so every curve repeats with the loop. Every curve is the beat's
    decaying pulse: a kick is a beat, an onset and a burst in every band at once.
    """
    beat_times_seconds = np.arange(n_beats) * (n_frames / n_beats / fps)  # (n_beats,)
    pulse = beat_pulses(beat_times_seconds, fps, n_frames, decay_seconds)  # (n_frames,)
    return AudioControls(
        fps=fps,
        duration_seconds=n_frames / fps,
        tempo_bpm=n_beats * 60.0 * fps / n_frames,
        beat_times_seconds=beat_times_seconds,
        rms=pulse,
        onset=pulse,
        beat=pulse,
        low=pulse,
        mid=pulse,
        high=pulse,
    )


def beat_loop_path(
    controls: AudioControls, z_dim: int, seed: int, beat_pulse: float = AudioMotion.beat_pulse, harmonics: int = LOOP_HARMONICS
) -> torch.Tensor:
    """The seed's seamless loop over `controls.n_frames` (a `beat_loop_controls` metronome), kicked toward a
    random latent of its own on each beat: (n_frames, z_dim). The beats' latents repeat with the loop."""
    return lean_on_beats(loop_path(controls.n_frames, z_dim, seed, harmonics), controls, beat_pulse, seed)


def _circle_amplitudes(harmonics: int, z_dim: int) -> torch.Tensor:
    """Relative radii of the loop's circles, 1/k for frequency k, with unit sum of squares: (circles,)."""
    n_circles = min(harmonics, z_dim // 2)
    if n_circles < 1:
        raise ValueError(f"a loop needs z_dim >= 2 and harmonics >= 1, got z_dim={z_dim}, harmonics={harmonics}")
    amplitudes = 1.0 / torch.arange(1, n_circles + 1, dtype=torch.float64)
    return amplitudes / amplitudes.norm()


def _sphere_points(n: int, z_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Random latents at radius sqrt(z_dim), where the loops run: (n, z_dim) float64."""
    points = torch.randn(n, z_dim, generator=generator, dtype=torch.float64)
    return points / points.norm(dim=1, keepdim=True) * math.sqrt(z_dim)


def _generator(seed: int, stream: int = 0) -> torch.Generator:
    """An independent random stream per (seed, purpose), so adding pulses never changes the curve."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
