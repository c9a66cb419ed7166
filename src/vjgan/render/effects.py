"""VJ effects on frame batches, fired by the music: each a pure torch function of (T, 3, H, W) frames.

An effect's strength per frame is its control signal (a per-video-frame curve in [0, 1] from
`render.audio`) times the user's `--intensity`; at strength 0 a frame comes out bit-identical, so
effects cost nothing between events. Which signal drives which effect, and the order effects are
applied in, is the one table `EFFECTS`. What must survive from one chunk of frames to the next (the
feedback trail, the frame count that seeds the glitches) lives in `EffectState`, so rendering in
chunks gives the same clip as rendering at once. Decisions per frame are made on the host from the
control curves, so the device never waits on a sync.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from vjgan.errors import RenderError

MAX_INTENSITY = 4.0  # the largest --intensity accepted (1 = each effect's designed full strength)
RGB_SPLIT_MAX_FRACTION = 0.015  # red/blue offset at strength 1, as a fraction of the frame width
GLITCH_MAX_SLICES = 8  # displaced bands in a frame at strength 1
GLITCH_MAX_SHIFT_FRACTION = 0.12  # largest band displacement at strength 1, fraction of the width
GLITCH_BAND_FRACTIONS = (0.01, 0.08)  # band height range, fraction of the frame height
FLASH_MAX_MIX = 0.85  # how far towards white a strength-1 flash goes
ZOOM_MAX = 0.25  # extra magnification at strength 1 (1.25x)
KALEIDOSCOPE_FOLDS = 6  # mirror wedges around the centre
TRAILS_MAX_FEEDBACK = 0.85  # share of the previous output kept at strength 1


@dataclass
class EffectState:
    """What an effect chain carries across chunks: the glitch seed, the next frame's index, the trail."""

    seed: int = 0
    next_frame_index: int = 0
    trail: torch.Tensor | None = None  # (3, H, W): the last frame feedback_trails put out


def on_active_frames(frames: torch.Tensor, strength: np.ndarray, effect: Callable) -> torch.Tensor:
    """Runs `effect(frames[active], strength[active], active)` only where strength > 0; others pass as is."""
    active = np.flatnonzero(strength > 0)
    if len(active) == 0:
        return frames
    index = torch.from_numpy(active).to(frames.device)
    return frames.index_copy(0, index, effect(frames[index], strength[active], active))


def mix_weights(strength: np.ndarray, scale: float, like: torch.Tensor) -> torch.Tensor:
    """Per-frame blend amounts min(strength, 1) * scale as a (T, 1, 1, 1) tensor beside `like`."""
    amounts = np.minimum(strength, 1.0) * scale
    return torch.as_tensor(amounts, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)


def shift_x(planes: torch.Tensor, offset_px: int) -> torch.Tensor:
    """(..., H, W) moved right by `offset_px` (left if negative), the uncovered edge repeated."""
    if offset_px == 0:
        return planes
    width = planes.shape[-1]
    offset_px = max(-width + 1, min(width - 1, offset_px))
    if offset_px > 0:
        edge = planes[..., :1].expand(*planes.shape[:-1], offset_px)
        return torch.cat([edge, planes[..., : width - offset_px]], dim=-1)
    edge = planes[..., -1:].expand(*planes.shape[:-1], -offset_px)
    return torch.cat([planes[..., -offset_px:], edge], dim=-1)


def rgb_split(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """Red and blue pulled apart sideways, like a misconverged projector."""

    def split(active, active_strength, _):
        out = active.clone()
        for i, amount in enumerate(active_strength):
            offset_px = round(amount * RGB_SPLIT_MAX_FRACTION * frames.shape[-1])
            out[i, 0] = shift_x(active[i, 0], -offset_px)
            out[i, 2] = shift_x(active[i, 2], offset_px)
        return out

    return on_active_frames(frames, strength, split)


def glitch_slices(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """Horizontal bands torn sideways (wrapping round), as in a damaged digital signal.

    The bands of a frame depend only on the seed and the frame's index in the clip, so a chunked
    render draws exactly the bands a whole render would.
    """
    height, width = frames.shape[-2:]
    low, high = (max(1, round(fraction * height)) for fraction in GLITCH_BAND_FRACTIONS)

    def tear(active, active_strength, active_positions):
        out = active.clone()
        for i, (amount, position) in enumerate(zip(active_strength, active_positions)):
            rng = np.random.default_rng([state.seed, state.next_frame_index + int(position)])
            for _ in range(math.ceil(amount * GLITCH_MAX_SLICES)):
                band_px = int(rng.integers(low, high + 1))
                top = int(rng.integers(0, max(1, height - band_px)))
                offset_px = round(rng.uniform(-1, 1) * amount * GLITCH_MAX_SHIFT_FRACTION * width)
                out[i, :, top : top + band_px] = out[i, :, top : top + band_px].roll(offset_px, dims=-1)
        return out

    return on_active_frames(frames, strength, tear)


def flash(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """The frame pushed towards white: a strobe on the beat."""
    return on_active_frames(
        frames,
        strength,
        lambda active, amount, _: torch.lerp(active, torch.ones_like(active), mix_weights(amount, FLASH_MAX_MIX, active)),
    )


def zoom_pulse(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """A push into the centre of the frame, sub-pixel smooth (bilinear)."""

    def zoom(active, active_strength, _):
        scale = 1.0 / (1.0 + ZOOM_MAX * np.asarray(active_strength, np.float64))  # sampled span per output span
        theta = np.zeros((len(active), 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta = torch.as_tensor(theta, dtype=active.dtype, device=active.device)  # (k, 2, 3)
        grid = F.affine_grid(theta, list(active.shape), align_corners=False)  # (k, H, W, 2)
        return F.grid_sample(active, grid, mode="bilinear", padding_mode="border", align_corners=False)

    return on_active_frames(frames, strength, zoom)


def mirror(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """The left half reflected onto the right, faded in with the strength."""

    def reflect(active, active_strength, _):
        half = active.shape[-1] // 2
        mirrored = active.clone()
        mirrored[..., active.shape[-1] - half :] = active[..., :half].flip(-1)
        return torch.lerp(active, mirrored, mix_weights(active_strength, 1.0, active))

    return on_active_frames(frames, strength, reflect)


def kaleidoscope(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """KALEIDOSCOPE_FOLDS mirrored wedges around the centre, faded in with the strength."""

    def fold(active, active_strength, _):
        grid = kaleidoscope_grid(*active.shape[-2:], active.device, active.dtype)  # (H, W, 2)
        grid = grid.expand(len(active), *grid.shape)  # (k, H, W, 2)
        folded = F.grid_sample(active, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return torch.lerp(active, folded, mix_weights(active_strength, 1.0, active))

    return on_active_frames(frames, strength, fold)


@lru_cache(maxsize=8)
def kaleidoscope_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H, W, 2) sampling grid (x, y in [-1, 1]) folding every angle into one mirrored wedge.

    Cached where it is used: on CUDA a 1080p grid is 16 MB that would otherwise cross to the device,
    waiting for it, every chunk."""
    aspect = width / height
    ys, xs = torch.meshgrid(
        (torch.arange(height, dtype=torch.float64) + 0.5) / height * 2 - 1,
        (torch.arange(width, dtype=torch.float64) + 0.5) / width * 2 - 1,
        indexing="ij",
    )
    xs = xs * aspect  # square pixels: measure angles in height units
    radius, angle = torch.hypot(xs, ys), torch.atan2(ys, xs)
    wedge = 2 * math.pi / KALEIDOSCOPE_FOLDS
    angle = torch.remainder(angle, wedge)
    angle = torch.minimum(angle, wedge - angle)  # mirror every other wedge
    grid = torch.stack([radius * torch.cos(angle) / aspect, radius * torch.sin(angle)], dim=-1)
    return grid.to(device, dtype)


def feedback_trails(frames: torch.Tensor, strength: np.ndarray, state: EffectState) -> torch.Tensor:
    """Each output frame keeps a share of the previous output: moving things smear into trails.

    The last output is kept in `state.trail`, so the next chunk continues the same feedback loop.
    """
    amounts = np.minimum(strength, 1.0) * TRAILS_MAX_FEEDBACK
    previous = state.trail
    outputs = []
    for frame, amount in zip(frames, amounts):
        if amount > 0 and previous is not None:
            frame = torch.lerp(frame, previous, float(amount))
        outputs.append(frame)
        previous = frame
    state.trail = previous.clone()
    return frames if not np.any(amounts > 0) else torch.stack(outputs)


@dataclass(frozen=True)
class Effect:
    """An effect, the control curve that drives it, and the level the curve must pass to fire it.

    Music keeps every curve above zero nearly all the time, so an ungated glitch would tear every frame
    of a track; the gate keeps event-like effects for the events (strong onsets, the top of a beat) and
    rescales what passes it to [0, 1], so a peak still fires at full strength.
    """

    apply: Callable[[torch.Tensor, np.ndarray, EffectState], torch.Tensor]
    signal: str  # the `render.audio` control curve that drives it
    gate: float = 0.0  # control level in [0, 1) below which the effect is off

    def strength(self, control: np.ndarray, intensity: float) -> np.ndarray:
        """Per-frame strength: the part of the control above the gate, rescaled to [0, 1], times intensity."""
        return np.clip((control - self.gate) / (1.0 - self.gate), 0.0, 1.0) * intensity


# Applied in this order: geometry first, then the trail (so it smears the whole picture), then the
# glitches and colour effects on top (so the trail does not smear them into mush).
# Gates from the demo's track and 128-bpm club mixes: onset passes 0.5 on ~16% of frames (the hits),
# the beat pulse 0.5 for its first few frames, the band energies 0.4 on loud passages only.
EFFECTS = {
    "zoom": Effect(zoom_pulse, "beat"),
    "kaleidoscope": Effect(kaleidoscope, "low", gate=0.4),
    "mirror": Effect(mirror, "mid", gate=0.4),
    "trails": Effect(feedback_trails, "rms", gate=0.2),
    "glitch": Effect(glitch_slices, "onset", gate=0.5),
    "rgb_split": Effect(rgb_split, "high", gate=0.3),
    "flash": Effect(flash, "beat", gate=0.5),
}


def controls_for_frames(audio_controls, start: int, stop: int) -> dict[str, np.ndarray]:
    """The signals the effects use, for video frames [start, stop) of a clip (`render.audio.AudioControls`)."""
    return {signal: getattr(audio_controls, signal)[start:stop] for signal in {e.signal for e in EFFECTS.values()}}


def parse_effects(text: str) -> tuple[str, ...]:
    """ "glitch,flash" -> ("glitch", "flash"); "" -> no effects; "all" -> every effect."""
    if text.strip() == "all":
        return tuple(EFFECTS)
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    check_effects(names)
    return names


def check_effects(effects: Sequence[str], intensity: float = 1.0) -> None:
    unknown = [name for name in effects if name not in EFFECTS]
    if unknown:
        raise RenderError(f"effects {', '.join(unknown)}: unknown; choose from {', '.join(EFFECTS)}")
    if not 0 <= intensity <= MAX_INTENSITY:
        raise RenderError(f"intensity {intensity}: must be between 0 and {MAX_INTENSITY:g}")


def apply(
    frames: torch.Tensor,
    controls: Mapping[str, np.ndarray],
    effects: Sequence[str],
    intensity: float = 1.0,
    state: EffectState | None = None,
) -> torch.Tensor:
    """(T, 3, H, W) frames with `effects` applied, each driven by its signal in `controls` (name -> (T,)).

    Pass the same `state` for consecutive chunks of one clip; without it each call starts afresh.
    """
    check_effects(effects, intensity)
    strengths = {}
    for name in effects:
        effect = EFFECTS[name]
        control = np.asarray(controls[effect.signal], np.float64)
        if control.shape != (len(frames),):
            raise ValueError(f"control {effect.signal!r} has shape {control.shape}, expected ({len(frames)},)")
        strengths[name] = effect.strength(control, intensity)
    return apply_strengths(frames, strengths, state)


def apply_strengths(frames: torch.Tensor, strengths: Mapping[str, np.ndarray], state: EffectState | None = None) -> torch.Tensor:
    """(T, 3, H, W) frames with each named effect applied at its per-frame strength (name -> (T,)), in
    `EFFECTS` order: the one chain rendered clips and the live mode (where a fader adds to the music) share."""
    state = state if state is not None else EffectState()
    for name, effect in EFFECTS.items():
        if name in strengths:
            frames = effect.apply(frames, np.asarray(strengths[name], np.float64), state)
    state.next_frame_index += len(frames)
    return frames
