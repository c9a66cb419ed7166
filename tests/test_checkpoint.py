"""Checkpoints: atomic safetensors files, newest three kept, optimizer state and the EMA generator round-trip."""

import os

import pytest
import torch

from vjgan.errors import RunError
from vjgan.model.networks import Generator, ModelConfig
from vjgan.run import checkpoint as ckpt
from vjgan.train.config import TrainConfig, config_to_dict

TINY = TrainConfig(model=ModelConfig(size_px=(32, 32), width=4, z_dim=8), store="data/x")


def save(run_dir, images_seen, tensors=None):
    tensors = tensors if tensors is not None else {"x": torch.full((2,), float(images_seen))}
    metadata = {"config": config_to_dict(TINY), "counters": {"images_seen": images_seen, "step": images_seen // 4}}
    return ckpt.write_checkpoint(run_dir, tensors, metadata)


def test_checkpoint_is_written_atomically_and_describes_itself(tmp_path):
    path = save(tmp_path, 400)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [path.name]  # no temporary left behind
    tensors, metadata = ckpt.read_checkpoint(path)
    assert torch.equal(tensors["x"], torch.full((2,), 400.0))
    assert metadata["counters"] == {"images_seen": 400, "step": 100}
    assert ckpt.checkpoint_config(metadata, path) == TINY


def test_only_the_newest_three_checkpoints_are_kept(tmp_path):
    for images_seen in (100, 200, 300, 400, 500):
        save(tmp_path, images_seen)
    assert [seen for seen, _ in ckpt.list_checkpoints(tmp_path)] == [300, 400, 500]
    assert len(list((tmp_path / "checkpoints").iterdir())) == 3


def test_newest_is_read_from_the_metadata_not_the_file_name(tmp_path):
    newest = save(tmp_path, 900)
    older = save(tmp_path, 100)
    misleading = older.with_name("images-999999999999.safetensors")
    os.replace(older, misleading)
    assert ckpt.latest_checkpoint(tmp_path) == newest


def test_half_written_temporaries_are_ignored_and_removed(tmp_path):
    path = save(tmp_path, 100)
    leftovers = [path.with_name(f"images-000000000200.safetensors{suffix}") for suffix in (".tmp", ".partial")]
    for leftover in leftovers:
        leftover.write_bytes(b"\x00" * 10)  # what a kill during a save leaves (".tmp": older versions)
    assert ckpt.latest_checkpoint(tmp_path) == path
    ckpt.remove_temporary_files(tmp_path)
    assert not any(leftover.exists() for leftover in leftovers)


def damage(path, how: str) -> None:
    """Cut a checkpoint short, or flip one bit of its last tensor byte (its header still reads)."""
    data = bytearray(path.read_bytes())
    if how == "cut":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))


def test_damaged_newest_checkpoints_are_passed_over_and_kept_aside(tmp_path, capsys):
    oldest, middle, newest = (save(tmp_path, seen) for seen in (100, 200, 300))
    damage(newest, "cut")
    damage(middle, "flip")
    (tmp_path / "checkpoints" / "images-000000000400.safetensors").write_bytes(b"garbage, not safetensors")
    assert ckpt.latest_checkpoint(tmp_path) == oldest
    assert [seen for seen, _ in ckpt.list_checkpoints(tmp_path)] == [100, 200]  # headers that read; 200's tensors do not
    with pytest.raises(RunError, match="images-000000000200.safetensors.*SHA-256"):
        ckpt.read_checkpoint(middle)

    assert ckpt.set_aside_damaged(tmp_path) == oldest
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "images-000000000300" in lines[0] and "images-000000000200" in lines[0]
    assert "using images-000000000100.safetensors" in lines[0]
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == [
        "images-000000000100.safetensors",
        "images-000000000200.safetensors.damaged",
        "images-000000000300.safetensors.damaged",
        "images-000000000400.safetensors.damaged",
    ]
    assert ckpt.set_aside_damaged(tmp_path) == oldest and capsys.readouterr().err == ""  # ignored afterwards


def test_load_generator_passes_over_a_damaged_newest_checkpoint_without_moving_it(tmp_path, capsys):
    G_ema = Generator(TINY.model)
    save(tmp_path, 100, ckpt.module_tensors("G_ema", G_ema))
    newest = save(tmp_path, 200, ckpt.module_tensors("G_ema", Generator(TINY.model)))
    damage(newest, "flip")
    generator, _ = ckpt.load_generator(tmp_path)
    assert torch.equal(generator.project.weight, G_ema.project.weight)
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "images-000000000200" in line and "using images-000000000100" in line
    assert newest.exists()  # a reader changes nothing in the run


def test_adam_state_round_trips_so_training_continues_identically(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.5, 0.9))
    inputs = torch.randn(8, 4)

    def step(m, opt):
        opt.zero_grad()
        m(inputs).square().mean().backward()
        opt.step()

    step(model, optimizer)
    copy = torch.nn.Linear(4, 3)
    copy.load_state_dict(model.state_dict())
    copy_optimizer = torch.optim.Adam(copy.parameters(), lr=0.1, betas=(0.5, 0.9))
    tensors, _ = ckpt.read_checkpoint(save(tmp_path, 100, ckpt.optimizer_tensors("opt", optimizer)))
    ckpt.load_optimizer(copy_optimizer, tensors, "opt")
    step(model, optimizer)
    step(copy, copy_optimizer)
    assert torch.equal(model.weight, copy.weight) and torch.equal(model.bias, copy.bias)
    assert ckpt.optimizer_hyperparameters(optimizer)[0]["betas"] == (0.5, 0.9)


def test_load_generator_gives_the_ema_generator_in_eval_mode(tmp_path):
    G, G_ema = Generator(TINY.model), Generator(TINY.model)
    with torch.no_grad():
        for p in G_ema.parameters():
            p.fill_(0.01)
    tensors = {**ckpt.module_tensors("G", G), **ckpt.module_tensors("G_ema", G_ema)}
    first = save(tmp_path, 100, tensors)
    G_later = Generator(TINY.model)
    save(tmp_path, 200, {**ckpt.module_tensors("G", G), **ckpt.module_tensors("G_ema", G_later)})

    newest, config = ckpt.load_generator(tmp_path)
    assert config == TINY and not newest.training
    assert torch.equal(newest.project.weight, G_later.project.weight)
    chosen, _ = ckpt.load_generator(tmp_path, checkpoint=first)
    assert torch.equal(chosen.project.weight, G_ema.project.weight)
    assert chosen(torch.zeros(2, 8)).shape == (2, 3, 32, 32)


def test_load_generator_without_a_run_or_checkpoints_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="no such run"):
        ckpt.load_generator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no checkpoints"):
        ckpt.load_generator(tmp_path / "empty")
    with pytest.raises(RunError, match="no such checkpoint"):
        ckpt.load_generator(tmp_path, checkpoint=tmp_path / "nope.safetensors")


def test_weights_of_another_model_are_refused(tmp_path):
    other = Generator(ModelConfig(size_px=(32, 32), width=8, z_dim=8))
    path = save(tmp_path, 100, ckpt.module_tensors("G_ema", other))
    with pytest.raises(RunError, match="do not fit"):
        ckpt.load_generator(tmp_path, checkpoint=path)
