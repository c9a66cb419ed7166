"""Issue 15's levers in the real training step: R1 + R2 penalties, the relativistic pairing loss, and the
presets that use them, which must leave runs made before them loadable as they were."""

import dataclasses
import math

import pytest
import torch

from vjgan.errors import VjganError
from vjgan.model.networks import Discriminator, Generator
from vjgan.train.config import config_from_dict, config_to_dict, preset, run_setting_changes
from vjgan.train.step import step_on_random_frames

NEW_SETTINGS = ("gradient_penalty", "gradient_penalty_every_steps")  # TrainConfig fields added for issue 15
NEW_MODEL_SETTINGS = ("skip_excitation",)  # ModelConfig fields added for issue 15


def _tiny(name: str = "modern", **changes):
    config = preset(name)
    small_model = dataclasses.replace(config.model, size_px=(32, 32), width=4, z_dim=8)
    return dataclasses.replace(config, model=small_model, batch_size=8, precision="fp32", device="cpu", **changes)


def test_gradient_penalty_adds_to_ds_loss_of_the_same_step():
    plain = step_on_random_frames(_tiny(), 16)(0)
    penalised = step_on_random_frames(_tiny(gradient_penalty=10.0), 16)(0)
    assert torch.isfinite(penalised).all()
    assert penalised[0] > plain[0] + 1e-4  # same seed, same batch and weights: only the penalty differs


def test_lazy_penalties_skip_the_steps_between_and_weigh_n_times_on_theirs():
    def first_d_loss(step_count: int, **changes) -> float:
        step = step_on_random_frames(_tiny(**changes), 16)
        step.state.counters.step = step_count  # the same weights and batch, as the step-th step of a run
        return step(0)[0].item()

    plain = first_d_loss(0)
    every_step = first_d_loss(0, gradient_penalty=10.0) - plain
    lazy = dict(gradient_penalty=10.0, gradient_penalty_every_steps=4)
    assert first_d_loss(0, **lazy) - plain == pytest.approx(4 * every_step, rel=1e-3)
    assert first_d_loss(1, **lazy) == plain


def test_relativistic_loss_trains_a_step_starting_from_log_2():
    losses = step_on_random_frames(_tiny(loss="relativistic"), 16)(0)
    assert losses == pytest.approx([math.log(2)] * 2, abs=0.05)  # a fresh D scores real and fake alike


def test_old_runs_configs_read_back_as_they_were():
    for name in ("seed96", "modern"):
        values = config_to_dict(preset(name))
        for field in NEW_SETTINGS:
            del values[field]
        for field in NEW_MODEL_SETTINGS:
            del values["model"][field]
        assert config_from_dict(values, "config.toml") == preset(name)


def test_a_negative_gradient_penalty_is_refused():
    with pytest.raises(VjganError, match="gradient_penalty=-1"):
        _tiny(gradient_penalty=-1.0)


def test_a_negative_count_of_batchnorm_latents_is_refused():
    with pytest.raises(VjganError, match="ema_batchnorm_latents=-1"):
        _tiny(ema_batchnorm_latents=-1)


def test_modern2_keeps_moderns_networks_and_changes_only_the_screened_levers():
    changed = sorted(change.split(":")[0] for change in run_setting_changes(preset("modern"), preset("modern2")))
    assert changed == [
        "augment",
        "batch_size",
        "gradient_penalty",
        "gradient_penalty_every_steps",
        "loss",
        "lr",
        "model.width",
    ]
    assert preset("modern2").augment == "color:0.5,translation,zoom,cutout"  # half the colour changes, zoom added
    # and EMA-G's BatchNorm statistics measured on itself (a session setting: it leaves training as it was)
    assert (preset("modern2").ema_batchnorm_latents, preset("modern").ema_batchnorm_latents) == (1024, 0)


def test_modern2_trains_frames_under_96_px_with_full_colour_and_no_penalty():
    small = preset("modern2", (64, 64))
    assert small.augment == "color,translation,zoom,cutout" and small.gradient_penalty == 0.0
    assert preset("modern2", (64, 112)) == small  # the short side decides (a 16:9 store)
    assert preset("modern2", (96, 96)) == preset("modern2", (96, 160)) == preset("modern2")
    assert preset("modern", (64, 64)) == preset("modern")  # presets without small-frame settings are as named
    changed = sorted(change.split(":")[0] for change in run_setting_changes(small, preset("modern2")))
    assert changed == ["augment", "gradient_penalty", "gradient_penalty_every_steps"]


def test_vjgan_train_resolves_the_preset_for_the_stores_frame_size_before_the_flags(tmp_path):
    from conftest import write_frame_store
    from media import gradient_frames

    from vjgan.cli import build_parser
    from vjgan.cli.train import resolve_config

    store = str(write_frame_store(tmp_path / "genre", gradient_frames(4, 32, 32)))

    def resolved(*flags):
        argv = ["train", store, *flags]
        return resolve_config(build_parser(argv).parse_args(argv), [store])

    small = resolved("--preset", "modern2")
    assert small.model.size_px == (32, 32) and small.gradient_penalty == 0.0 and small.augment.startswith("color,")
    assert resolved("--preset", "modern2", "--augment", "translation").augment == "translation"  # a flag still wins
    large = resolved("--preset", "modern2", "--size", "96")
    assert large.gradient_penalty == 1.0 and large.augment == preset("modern2").augment


def test_modern256_makes_and_scores_256_px_frames():
    config = preset("modern256")
    with torch.no_grad():
        frames = Generator(config.model).eval()(torch.randn(1, config.model.z_dim))
        assert frames.shape == (1, 3, 256, 256) and Discriminator(config.model)(frames).shape == (1,)
