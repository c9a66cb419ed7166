"""TrainConfig: presets, CLI-style overrides, the original's epoch schedule, TOML round trips, setting changes."""

import dataclasses

import pytest

from vjgan.errors import RunError, VjganError
from vjgan.model.networks import ModelConfig
from vjgan.overrides import with_overrides
from vjgan.run.directory import read_config_toml, write_config_toml
from vjgan.train.config import (
    PRESETS,
    TrainConfig,
    preset,
    run_setting_changes,
    with_epochs,
)


def test_seed96_preset_is_the_original_workflow():
    config = preset("seed96")
    assert config.model.arch == "seed96" and config.model.size_px == (96, 96) and config.model.latent == "uniform"
    assert (config.batch_size, config.lr, config.betas, config.weight_decay) == (100, 2e-4, (0.5, 0.999), 1e-5)
    assert config.images_total == 1000 * 5000 and config.snapshot_every_images == 5000
    assert config.noise_bank_size == 64


def test_every_preset_builds_and_modern_differs_from_seed96():
    assert set(PRESETS) == {"seed96", "modern", "modern2", "modern256"}
    assert preset("modern").model.arch == "modern" and preset("modern").loss == "hinge"


def test_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(VjganError, match="seed96"):
        preset("stylegan9")


def test_overrides_skip_not_given_values_and_reach_the_model():
    base = preset("seed96")
    config = with_overrides(base, lr=1e-3, batch_size=None, model_width=16, model_size_px=(64, 64), model_z_dim=None)
    assert config.lr == 1e-3 and config.batch_size == base.batch_size
    assert config.model.width == 16 and config.model.size_px == (64, 64) and config.model.z_dim == base.model.z_dim


def test_epochs_give_the_total_and_one_snapshot_per_epoch():
    config = with_epochs(preset("seed96"), epochs=1000, images_per_epoch=3000)
    assert config.images_total == 3_000_000 and config.snapshot_every_images == 3000
    assert with_epochs(preset("seed96"), epochs=10).images_total == 10 * 5000


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 0),
        ("lr", 0.0),
        ("ema_rampup", -0.1),
        ("lr", float("nan")),
        ("loss", "wgan"),
        ("precision", "fp8"),
        ("device", "tpu"),
        ("minutes", 0.0),
        ("augment", "colour"),
        ("snapshot_every_images", 0),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(field, value):
    with pytest.raises(VjganError, match=field):
        dataclasses.replace(TrainConfig(), **{field: value})


def test_ema_half_life_ramps_up_with_images_seen_then_holds():
    config = TrainConfig(batch_size=100, ema_half_life_images=10_000, ema_rampup=0.05)
    assert config.ema_beta(1_000) == pytest.approx(0.5 ** (100 / 50))  # half-life 5% of 1,000 images
    assert config.ema_beta(10_000_000) == pytest.approx(0.5 ** (100 / 10_000))
    assert config.ema_beta(0) > 0  # the first step still averages
    fixed = dataclasses.replace(config, ema_rampup=0.0)
    assert fixed.ema_beta(1_000) == fixed.ema_beta(10_000_000) == pytest.approx(0.5 ** (100 / 10_000))


def test_config_survives_a_toml_round_trip(tmp_path):
    config = with_overrides(preset("modern"), store="data/particles", minutes=2.5, ema_rampup=0.0, model_size_px=(64, 128))
    write_config_toml(config, tmp_path / "config.toml")
    assert read_config_toml(tmp_path / "config.toml") == config
    unset = TrainConfig(store="x")  # minutes None is left out of TOML and comes back as None
    write_config_toml(unset, tmp_path / "unset.toml")
    assert read_config_toml(tmp_path / "unset.toml") == unset


def test_a_foreign_toml_is_a_run_error_naming_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("learning_rate = 0.1\n")
    with pytest.raises(RunError, match="config.toml"):
        read_config_toml(path)
    path.write_text("not toml [")
    with pytest.raises(RunError, match="config.toml"):
        read_config_toml(path)


def test_setting_changes_list_run_settings_but_not_session_ones():
    stored = TrainConfig(store="data/a")
    session_only = dataclasses.replace(
        stored,
        images_total=stored.images_total * 2,
        minutes=5.0,
        precision="fp32",
        compile=True,
        device="cpu",
        store="/elsewhere/a",  # a store at another path is checked by its manifest (test_train_faults), not refused here
    )
    assert run_setting_changes(stored, session_only) == []
    changed = dataclasses.replace(stored, lr=1e-3, model=ModelConfig(width=32))
    assert run_setting_changes(stored, changed) == ["lr: 0.0002 -> 0.001", "model.width: 64 -> 32"]
