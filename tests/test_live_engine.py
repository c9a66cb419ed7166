"""The live engine: a real trained run, frames made from the clock, the parameters and the audio."""

import numpy as np
import pytest
import torch

from vjgan.errors import LiveError, RunError
from vjgan.live.engine import AudioState, LiveConfig, LiveEngine, Motion, with_effects_reacting
from vjgan.live.params import LiveParams
from vjgan.render.layout import Layout, compose_batch, to_uint8_hwc
from vjgan.render.pipeline import LatentRenderer, RenderConfig
from vjgan.run.directory import RunDir


class FakeClock:
    """A clock the test moves by hand, so motion is a function of the steps taken."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_engine(runs, clock=None, **config):
    params = LiveParams(n_runs=len(runs))
    config = LiveConfig(frame_size_wh=(320, 180), device="cpu", precision="fp32", **config)
    return LiveEngine(runs, config, params, clock=clock or FakeClock()), params


def test_frame_is_the_generators_picture_as_a_render_would_compose_it(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run], clock)
    params.update({"motion": "loop", "seed": 7})
    frame = engine.frame()
    assert frame.pixels.shape == (engine.canvas_size_wh[1], engine.canvas_size_wh[0], 3)
    # the same latent through the renderer's own generator and layout gives the same picture
    generator, _ = RunDir(tiny_run).load_generator()
    renderer = LatentRenderer(generator, RenderConfig(device="cpu", precision="fp32", frame_size_wh=(320, 180)))
    latent = engine.motion.latents([7], params.values(), clock.now)
    expected = to_uint8_hwc(compose_batch(renderer.images(latent)[None], Layout("single"), engine.canvas_size_wh))[0]
    assert np.abs(frame.pixels.astype(int) - expected.astype(int)).max() <= 1
    assert frame.pixels.std() > 5  # a picture, not a flat colour


def test_picture_moves_with_time_and_holds_when_frozen(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run], clock)
    params.update({"motion": "walk", "speed": 2.0, "loop_seconds": 4.0})
    first = engine.frame().pixels
    clock.now += 0.2
    moved = engine.frame().pixels
    assert np.abs(moved.astype(int) - first.astype(int)).mean() > 0.5
    params.set("freeze", True)
    clock.now += 0.2
    held = engine.frame().pixels
    clock.now += 0.2
    assert np.array_equal(engine.frame().pixels, held)


def test_speed_zero_stands_still_and_seed_changes_the_picture(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run], clock)
    params.update({"speed": 0.0, "audio_motion": 0.0, "crossfade": 0.0})
    first = engine.frame().pixels
    clock.now += 0.1
    assert np.array_equal(engine.frame().pixels, first)
    params.fire("new_seed")
    clock.now += 0.1
    assert not np.array_equal(engine.frame().pixels, first)


def test_run_change_crossfades_over_the_crossfade_seconds(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run, tiny_run], clock)
    params.update({"speed": 0.0, "audio_motion": 0.0, "crossfade": 1.0, "seed": 1})
    before = engine.frame().pixels.astype(int)
    params.update({"seed": 2})  # a new scene: blended from the old one over a second
    clock.now += 0.001
    start = engine.frame().pixels.astype(int)
    clock.now += 0.5
    middle = engine.frame().pixels.astype(int)
    clock.now += 0.6
    after = engine.frame().pixels.astype(int)
    assert np.abs(start - before).mean() < 0.05 * np.abs(after - before).mean() + 0.5
    assert 0.2 < np.abs(middle - before).mean() / np.abs(after - before).mean() < 0.8
    params.fire("next_run")
    engine.frame()
    assert params.get("run") == 1


def test_grid_and_wall_show_several_tiles(tiny_run):
    engine, params = make_engine([tiny_run])
    params.set("layout", "grid")
    grid = engine.frame().pixels
    assert grid.shape == engine.frame().pixels.shape  # one canvas size for every layout
    assert engine.tiles(engine.layout_of("grid")) > 1
    params.set("layout", "wall")
    engine.frame()
    assert engine.tiles(engine.layout_of("wall")) > 1


def test_onsets_fire_the_music_effects_and_silence_none(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run], clock)
    params.update({"freeze": True})
    with_effects_reacting(params, ("glitch", "rgb_split", "flash"))
    quiet = engine.frame(AudioState()).pixels
    clock.now += 1 / 30
    assert np.array_equal(engine.frame(AudioState()).pixels, quiet)
    clock.now += 1 / 30
    hit = engine.frame(AudioState(onset=1.0, onset_count=1, high=1.0, beat=1.0, beat_count=1, rms=1.0)).pixels
    assert np.abs(hit.astype(int) - quiet.astype(int)).mean() > 5
    params.set("fx_flash", 1.0)  # a fader: fires without the music
    clock.now += 1 / 30
    assert engine.frame(AudioState()).pixels.mean() > quiet.mean() + 20


def test_beat_motion_counts_loops_at_the_tempo():
    motion = Motion(z_dim=16)
    values = {**LiveParams().values(), "motion": "beat", "bpm": 120.0, "beats_per_loop": 4}
    for step in range(60):  # 3 seconds at 20 steps a second: 6 beats
        motion.advance(0.05, step * 0.05, values, AudioState())
    assert motion.beats == pytest.approx(6.0)
    assert motion.loop_count(values) == 1
    one = motion.latents([3], values, 3.0)
    assert one.shape == (1, 16)
    assert torch.isclose(one.norm(), torch.tensor(4.0), atol=0.05)  # on the sphere of radius sqrt(z_dim)


def test_taps_set_the_tempo_and_stop_following_the_music(tiny_run):
    clock = FakeClock()
    engine, params = make_engine([tiny_run], clock)
    for _ in range(4):
        params.fire("tap")
        engine.frame()
        clock.now += 0.4
    assert params.get("bpm") == pytest.approx(150.0)
    assert params.get("bpm_follow") is False
    engine.frame(AudioState(bpm=90.0))
    assert params.get("bpm") == pytest.approx(150.0)  # a tapped tempo wins over the heard one until `b`


def test_a_run_without_checkpoints_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no checkpoints"):
        make_engine([tmp_path / "empty"])
    with pytest.raises(LiveError, match="no runs"):
        make_engine([])
