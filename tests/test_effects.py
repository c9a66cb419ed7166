"""VJ effects: each fires only where its control does, chunked rendering is seamless, seeds repeat."""

import numpy as np
import pytest
import torch

from vjgan.errors import RenderError
from vjgan.render.effects import EFFECTS, EffectState, apply, controls_for_frames, parse_effects

SIGNALS = sorted({effect.signal for effect in EFFECTS.values()})


def moving_frames(n_frames: int, height: int = 48, width: int = 64) -> torch.Tensor:
    """(T, 3, H, W) in [-1, 1], different in every frame and asymmetric left/right (so mirrors show)."""
    generator = torch.Generator().manual_seed(n_frames)
    return torch.rand(n_frames, 3, height, width, generator=generator) * 2 - 1


def controls(values) -> dict[str, np.ndarray]:
    return {signal: np.asarray(values, np.float32) for signal in SIGNALS}


@pytest.mark.parametrize("name", list(EFFECTS))
def test_effect_changes_frames_only_where_its_control_fires(name):
    frames = moving_frames(4)
    before = frames.clone()
    out = apply(frames, controls([0, 1, 0, 1]), [name], intensity=1.0)
    assert out.shape == frames.shape and out.dtype == frames.dtype
    assert torch.equal(frames, before)  # the input is never modified
    assert torch.equal(out[0], frames[0]) and torch.equal(out[2], frames[2])
    assert not torch.equal(out[1], frames[1]) and not torch.equal(out[3], frames[3])


@pytest.mark.parametrize("name", [name for name, effect in EFFECTS.items() if effect.gate > 0])
def test_gated_effects_ignore_the_signal_below_their_gate_and_fire_in_full_at_its_peak(name):
    gate = EFFECTS[name].gate
    frames = moving_frames(3, width=256)  # wide enough that half of rgb_split's offset is a whole pixel
    out = apply(frames, controls([gate * 0.9, gate + (1 - gate) / 2, 1.0]), [name], intensity=1.0)
    assert torch.equal(out[0], frames[0])  # music's constant hum does not fire it
    assert not torch.equal(out[1], frames[1]) and not torch.equal(out[2], frames[2])
    assert EFFECTS[name].strength(np.array([gate + (1 - gate) / 2, 1.0]), 2.0) == pytest.approx([1.0, 2.0])


def test_zero_intensity_leaves_every_frame_identical():
    frames = moving_frames(3)
    assert torch.equal(apply(frames, controls([1, 1, 1]), list(EFFECTS), intensity=0.0), frames)


def test_chunked_application_equals_whole_batch_application():
    frames = moving_frames(12)
    rng = np.random.default_rng(5)
    curves = {signal: np.where(rng.random(12) < 0.3, 0, rng.random(12)) for signal in SIGNALS}
    whole = apply(frames, curves, list(EFFECTS), intensity=1.5, state=EffectState(seed=3))
    state = EffectState(seed=3)
    chunks = [
        apply(frames[start:stop], {k: v[start:stop] for k, v in curves.items()}, list(EFFECTS), 1.5, state)
        for start, stop in [(0, 5), (5, 9), (9, 12)]
    ]
    assert torch.equal(torch.cat(chunks), whole)
    assert state.next_frame_index == 12


def test_trails_carry_the_previous_chunk_into_the_next():
    frames = moving_frames(2)
    state = EffectState()
    apply(frames[:1], controls([0]), ["trails"], 1.0, state)
    continued = apply(frames[1:], controls([1]), ["trails"], 1.0, state)
    fresh = apply(frames[1:], controls([1]), ["trails"], 1.0)
    assert not torch.equal(continued, frames[1:])  # blended with the last frame of the first chunk
    assert torch.equal(fresh, frames[1:])  # nothing to blend with


def test_glitches_repeat_for_a_seed_and_differ_between_seeds():
    frames = moving_frames(3)
    onsets = controls([1, 0.5, 1])
    first = apply(frames, onsets, ["glitch"], 1.0, EffectState(seed=7))
    again = apply(frames, onsets, ["glitch"], 1.0, EffectState(seed=7))
    other = apply(frames, onsets, ["glitch"], 1.0, EffectState(seed=8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_unknown_effects_and_out_of_range_intensity_are_refused():
    with pytest.raises(RenderError, match="sparkle: unknown"):
        parse_effects("glitch,sparkle")
    with pytest.raises(RenderError, match="intensity 9"):
        apply(moving_frames(1), controls([1]), ["flash"], intensity=9)


def test_effect_lists_parse_from_the_command_line_form():
    assert parse_effects("glitch, flash") == ("glitch", "flash")
    assert parse_effects("") == ()
    assert parse_effects("all") == tuple(EFFECTS)


def test_controls_for_frames_slices_every_signal_the_effects_use():
    class Track:  # the attributes of render.audio.AudioControls that effects read
        pass

    track = Track()
    for index, signal in enumerate(SIGNALS):
        setattr(track, signal, np.arange(10, dtype=np.float32) + index)
    sliced = controls_for_frames(track, 3, 7)
    assert sorted(sliced) == SIGNALS
    assert sliced["beat"].tolist() == (np.arange(3, 7) + SIGNALS.index("beat")).tolist()
