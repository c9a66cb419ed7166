"""Latent paths: slerp, easing, seamless loops, keyframe walks and music-driven motion (pure maths)."""

import math

import numpy as np
import pytest
import torch

from vjgan.render.audio import AudioControls, beat_pulses
from vjgan.render.latent import (
    EASINGS,
    AudioMotion,
    audio_path,
    loop_curve,
    loop_path,
    slerp,
    walk_path,
)

Z_DIM = 64


def step_sizes(path: torch.Tensor) -> torch.Tensor:
    """Distance from each frame to the next: (T - 1,)."""
    return (path[1:] - path[:-1]).norm(dim=1)


def step_degrees(path: torch.Tensor) -> np.ndarray:
    """Angle between consecutive frames, degrees: (T - 1,)."""
    cos = torch.nn.functional.cosine_similarity(path[1:].double(), path[:-1].double(), dim=1)
    return np.degrees(np.arccos(np.clip(cos.numpy(), -1, 1)))


def test_slerp_starts_and_ends_on_its_endpoints():
    a, b = torch.randn(2, Z_DIM, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    a = torch.zeros(Z_DIM)
    b = torch.zeros(Z_DIM)
    a[0], b[1] = 8.0, 8.0  # orthogonal, equal norms
    middle = slerp(a, b, 0.5)
    assert middle.norm().item() == pytest.approx(8.0, rel=1e-6)
    assert ((a + b) / 2).norm().item() == pytest.approx(8.0 / math.sqrt(2), rel=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e-9, 1e-5])
def test_slerp_of_nearly_parallel_vectors_is_finite_and_straight(offset):
    a = torch.randn(Z_DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    b = a + offset * torch.randn(Z_DIM, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    path = slerp(a, b, t)
    assert torch.isfinite(path).all()
    lerp = a + t[:, None] * (b - a)
    assert torch.allclose(path, lerp, atol=1e-9)


def test_slerp_of_opposite_vectors_stays_finite():
    a = torch.randn(Z_DIM, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(slerp(a, -a, torch.linspace(0, 1, 5))).all()


def test_slerp_broadcasts_one_pair_over_many_times_and_pairs_over_their_times():
    a, b = torch.randn(2, Z_DIM, generator=torch.Generator().manual_seed(4))
    t = torch.linspace(0, 1, 9)
    together = slerp(a, b, t)
    assert together.shape == (9, Z_DIM) and together.dtype == torch.float32
    one_by_one = torch.stack([slerp(a, b, float(ti)) for ti in t])
    assert torch.allclose(together, one_by_one, atol=1e-6)
    pairs = slerp(a.expand(9, Z_DIM), b.expand(9, Z_DIM), t)  # (T, z_dim) with (T,)
    assert torch.allclose(pairs, together, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easings_fix_both_ends_and_never_go_back(name):
    ease = EASINGS[name]
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    eased = ease(t)
    assert eased[0].item() == pytest.approx(0.0, abs=1e-12)
    assert eased[-1].item() == pytest.approx(1.0, abs=1e-12)
    assert eased[100].item() == pytest.approx(0.5, abs=1e-12)
    assert (eased[1:] - eased[:-1] >= 0).all()


@pytest.mark.parametrize("name", ["sine", "cubic"])
def test_in_out_easings_start_and_stop_gently(name):
    eased = EASINGS[name](torch.tensor([0.0, 0.01, 0.49, 0.5, 0.99, 1.0], dtype=torch.float64))
    first_step, middle_step, last_step = eased[1] - eased[0], eased[3] - eased[2], eased[5] - eased[4]
    assert first_step < middle_step / 5 and last_step < middle_step / 5


def test_loop_wraps_around_with_an_ordinary_step():
    path = loop_path(75, Z_DIM, seed=5)
    inside = step_sizes(path)
    wrap = (path[0] - path[-1]).norm()
    assert inside.min() * 0.999 <= wrap <= inside.max() * 1.001
    # Constant speed: no step stands out, so no frame of the loop is where it "starts".
    assert (inside.std() / inside.mean()).item() < 1e-3


def test_loop_stays_on_the_typical_gaussian_radius():
    norms = loop_path(50, Z_DIM, seed=6).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(Z_DIM)), rtol=1e-5)


def test_loop_curve_repeats_every_turn_and_matches_the_path():
    phase = torch.linspace(0, 1, 13, dtype=torch.float64)[:-1]
    curve = loop_curve(phase, Z_DIM, seed=7)
    assert torch.allclose(loop_curve(phase + 1, Z_DIM, seed=7), curve, atol=1e-5)
    assert torch.allclose(loop_curve(phase + 3, Z_DIM, seed=7), curve, atol=1e-5)
    assert torch.allclose(loop_path(12, Z_DIM, seed=7), curve, atol=1e-6)


def test_loop_does_not_revisit_an_image_within_a_turn():
    n = 60
    path = loop_path(n, Z_DIM, seed=8)
    distances = torch.cdist(path, path)  # (T, T)
    frames_apart = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs()
    frames_apart = torch.minimum(frames_apart, n - frames_apart)  # around the loop, either way
    assert distances[frames_apart >= 3].min() > 2 * step_sizes(path).mean()


def test_loop_frames_are_distributed_like_gaussian_latents():
    # Across seeds, any one frame of a loop is a random direction at radius sqrt(z_dim): its
    # coordinates have mean 0 and variance 1, as the generator's training latents do.
    frames = torch.stack([loop_path(8, Z_DIM, seed=s)[3] for s in range(300)])  # (300, z_dim)
    assert abs(frames.mean().item()) < 0.03
    assert frames.var().item() == pytest.approx(1.0, abs=0.03)


def test_paths_are_reproducible_for_a_seed_and_differ_across_seeds():
    assert torch.equal(loop_path(20, Z_DIM, seed=9), loop_path(20, Z_DIM, seed=9))
    assert not torch.allclose(loop_path(20, Z_DIM, seed=9), loop_path(20, Z_DIM, seed=10))
    assert torch.equal(walk_path(20, Z_DIM, 4, seed=9), walk_path(20, Z_DIM, 4, seed=9))
    assert not torch.allclose(walk_path(20, Z_DIM, 4, seed=9), walk_path(20, Z_DIM, 4, seed=10))


def test_loop_in_a_tiny_latent_space_is_a_circle():
    path = loop_path(16, 2, seed=11)
    assert torch.allclose(path.norm(dim=1), torch.full((16,), math.sqrt(2.0)), rtol=1e-5)
    with pytest.raises(ValueError):
        loop_path(16, 1, seed=11)


def test_walk_passes_through_the_same_keyframes_at_any_length():
    short = walk_path(9, Z_DIM, keyframes=3, seed=12)
    long = walk_path(17, Z_DIM, keyframes=3, seed=12)
    assert short.shape == (9, Z_DIM) and short.dtype == torch.float32
    assert torch.allclose(short[[0, 4, 8]], long[[0, 8, 16]], atol=1e-6)
    assert not torch.allclose(long[0], long[16])


def test_eased_walk_lingers_on_keyframes_and_glides_between():
    steps = step_sizes(walk_path(41, Z_DIM, keyframes=3, seed=13, easing="cubic"))  # keyframes at 0, 20, 40
    assert steps[19] < steps[10] / 10 and steps[20] < steps[10] / 10
    linear = step_sizes(walk_path(41, Z_DIM, keyframes=3, seed=13, easing="linear"))
    for segment in (linear[:20], linear[20:]):  # constant speed within each segment
        assert (segment.std() / segment.mean()).item() < 1e-4


def test_looping_walk_comes_back_to_its_first_keyframe():
    n = 30
    path = walk_path(n, Z_DIM, keyframes=3, seed=14, loop=True)  # keyframes at frames 0, 10, 20, (30 = 0)
    open_walk = walk_path(21, Z_DIM, keyframes=3, seed=14)
    assert torch.allclose(path[[0, 10, 20]], open_walk[[0, 10, 20]], atol=1e-6)
    wrap = (path[0] - path[-1]).norm()
    assert wrap <= step_sizes(path).max() and wrap < step_sizes(path)[4]


def test_walk_rejects_a_single_keyframe_and_unknown_easings():
    with pytest.raises(ValueError, match="2 keyframes"):
        walk_path(10, Z_DIM, keyframes=1, seed=0)
    with pytest.raises(ValueError, match="bounce"):
        walk_path(10, Z_DIM, keyframes=3, seed=0, easing="bounce")


def make_controls(n_frames: int, fps: float = 30.0, rms=0.0, onset=0.0, beat_times_seconds=()) -> AudioControls:
    """Hand-made control curves: what the analysis of some track would give."""
    beat_times_seconds = np.asarray(beat_times_seconds, np.float64)
    curve = lambda value: np.broadcast_to(np.asarray(value, np.float32), (n_frames,)).copy()  # noqa: E731
    return AudioControls(
        fps=fps,
        duration_seconds=n_frames / fps,
        tempo_bpm=None,
        beat_times_seconds=beat_times_seconds,
        rms=curve(rms),
        onset=curve(onset),
        beat=beat_pulses(beat_times_seconds, fps, n_frames, decay_seconds=0.1),
        low=curve(0.0),
        mid=curve(0.0),
        high=curve(0.0),
    )


def test_audio_path_moves_at_drift_speed_plus_loudness():
    motion = AudioMotion(drift_degrees_per_second=6.0, loudness_degrees_per_second=30.0)
    rms = np.r_[np.zeros(60), np.ones(60)]
    path = audio_path(make_controls(120, fps=30.0, rms=rms), Z_DIM, seed=15, motion=motion)
    assert path.shape == (120, Z_DIM) and path.dtype == torch.float32
    degrees = step_degrees(path)
    # Frame k has moved by the speeds of frames before it: the step k -> k+1 uses frame k's loudness.
    assert degrees[:59] == pytest.approx(np.full(59, 6.0 / 30), rel=0.02)
    assert degrees[60:] == pytest.approx(np.full(59, 36.0 / 30), rel=0.02)


def test_audio_path_leans_away_exactly_on_beat_frames():
    beat_times_seconds = [0.5, 1.0, 1.5, 2.0]  # frames 15, 30, 45, 60 at 30 fps
    motion = AudioMotion(beat_pulse=0.3)
    path = audio_path(make_controls(80, beat_times_seconds=beat_times_seconds), Z_DIM, seed=16, motion=motion)
    degrees = step_degrees(path)  # degrees[k] is the step from frame k to frame k + 1
    for beat_frame in (15, 30, 45, 60):
        window = degrees[beat_frame - 6 : beat_frame + 6]
        assert beat_frame - 6 + int(np.argmax(window)) == beat_frame - 1  # the largest step arrives on the beat
    assert degrees[14] > 5 * degrees[5]


def test_audio_path_jumps_on_strong_onsets_but_not_twice_in_a_row():
    onset = np.zeros(150, np.float32)
    onset[[30, 40, 120]] = 1.0  # 40 is within the 2 s gap after 30
    motion = AudioMotion(jump_degrees=40.0, jump_min_gap_seconds=2.0, drift_degrees_per_second=3.0)
    degrees = step_degrees(audio_path(make_controls(150, onset=onset), Z_DIM, seed=17, motion=motion))
    jumps = np.flatnonzero(degrees > 10.0) + 1  # frames a big step arrives on
    assert jumps.tolist() == [30, 120]
    # The jump follows the loop curve, so it is a skip along it: a chord of about 40 degrees of arc.
    assert degrees[29] == pytest.approx(40.0, rel=0.1)


def test_audio_path_is_reproducible_for_a_seed_and_stays_on_the_sphere():
    controls = make_controls(40, rms=np.linspace(0, 1, 40), beat_times_seconds=[0.3, 0.8])
    norms = audio_path(controls, Z_DIM, seed=18).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(Z_DIM)), rtol=1e-4)
    assert torch.equal(audio_path(controls, Z_DIM, seed=18), audio_path(controls, Z_DIM, seed=18))
    assert not torch.allclose(audio_path(controls, Z_DIM, seed=18), audio_path(controls, Z_DIM, seed=19))
