"""The trainer end to end on a tiny model: run files, resume after SIGKILL / Ctrl-C / time budget,
training further, NaN handling, bad input, the CLI, and data-parallel training under torchrun."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from media import gradient_frames
from safetensors.torch import load_file

from vjgan.cli import main
from vjgan.errors import RunError, StoreError
from vjgan.footage.store import MANIFEST, Manifest, ShardInfo, StoreSettings, StoreWriter
from vjgan.model.networks import ModelConfig, latent_from_gaussian, to_uint8
from vjgan.run import checkpoint as ckpt
from vjgan.run.directory import read_config_toml
from vjgan.run.snapshots import SnapshotStore
from vjgan.train.config import TrainConfig
from vjgan.train.loop import dry_run, train

SIZE_PX = 32
TOTAL_IMAGES = 1280  # 160 steps of 8: long enough to kill mid-run, short enough for seconds


def make_store(path: Path, frames: np.ndarray) -> Path:
    """A frame store of `frames` written by the ingest stage's own writer (an empty one: a bare manifest)."""
    settings = StoreSettings(frames.shape[1:3], 30.0, "center")
    if not len(frames):
        path.mkdir(parents=True)
        (path / MANIFEST).write_text(Manifest(path.name, settings, ()).to_json())
        return path
    with StoreWriter(path, path.name, settings) as writer:
        shard = writer.new_shard("clip.mp4")
        for frame in frames:
            shard.append(frame)
        writer.commit(shard, ShardInfo("", "clip.mp4", "sha256:test", len(frames), 30.0, (64, 48), False))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("data") / "genre", gradient_frames(24, SIZE_PX, SIZE_PX))


def tiny_config(store: Path, **changes) -> TrainConfig:
    config = TrainConfig(
        model=ModelConfig(size_px=(SIZE_PX, SIZE_PX), width=4, z_dim=8),
        store=str(store),
        batch_size=8,
        augment="color,translation,cutout",
        ema_half_life_images=64,
        images_total=TOTAL_IMAGES,
        snapshot_every_images=160,
        checkpoint_every_images=320,
        log_every_steps=10,
        noise_bank_size=4,
        precision="fp32",
        device="cpu",
    )
    return dataclasses.replace(config, **changes)


def cli_args(config: TrainConfig, run_dir: Path) -> list[str]:
    """The `vjgan train` command line for `tiny_config`."""
    return [
        "train",
        config.store,
        "--run",
        str(run_dir),
        "--size",
        str(SIZE_PX),
        "--width",
        "4",
        "--z-dim",
        "8",
        "--batch-size",
        "8",
        "--augment",
        config.augment,
        "--ema-half-life",
        "64",
        "--images",
        str(config.images_total),
        "--snapshot-every",
        "160",
        "--checkpoint-every",
        "320",
        "--log-every",
        "10",
        "--noise-bank",
        "4",
        "--precision",
        "fp32",
        "--device",
        "cpu",
    ]


def signal_cli_after_a_checkpoint(args: list[str], run_dir: Path, signal_number: int) -> subprocess.Popen:
    """Run `vjgan train` in a subprocess and send it a signal once it has saved a trained checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as in-process tests (conftest): one thread, same sums
    process = subprocess.Popen([sys.executable, "-m", "vjgan", *args], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(seen >= 320 for seen in checkpoint_names(run_dir)):
        assert process.poll() is None and time.monotonic() < deadline, f"no checkpoint came: {process.stderr.read()}"
        time.sleep(0.002)
    process.send_signal(signal_number)
    process.wait()
    return process


def checkpoint_names(run_dir: Path) -> list[int]:
    """Images seen in the names of the run's checkpoints (polled while another process writes them)."""
    paths = (run_dir / "checkpoints").glob("images-*.safetensors") if run_dir.exists() else []
    return [int(path.name.split("-")[1].split(".")[0]) for path in paths]


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory) -> Path:
    """An uninterrupted run every resumed run must repeat exactly."""
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    train(tiny_config(store), run_dir)
    return run_dir


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """Bit-identical final weights, optimizer and RNG states, log losses and snapshot frames."""
    final, expected = load_file(ckpt.latest_checkpoint(run_dir)), load_file(ckpt.latest_checkpoint(reference))
    assert final.keys() == expected.keys()
    assert [name for name in final if not torch.equal(final[name], expected[name])] == []

    def losses(path):
        return [(r["step"], r["images_seen"], r["d_loss"], r["g_loss"]) for r in map(json.loads, open(path / "log.jsonl"))]

    assert losses(run_dir) == losses(reference)
    snapshots, expected_snapshots = SnapshotStore.open(run_dir), SnapshotStore.open(reference)
    assert snapshots.images_seen == expected_snapshots.images_seen
    assert np.array_equal(snapshots.frames(), expected_snapshots.frames())


def test_training_fills_the_run_directory(reference):
    config = read_config_toml(reference / "config.toml")
    assert config.images_total == TOTAL_IMAGES
    records = [json.loads(line) for line in (reference / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(10, 161, 10))
    assert set(records[0]) == {"step", "images_seen", "d_loss", "g_loss", "images_per_second", "seconds"}
    assert all(np.isfinite(r["d_loss"]) and r["images_per_second"] > 0 for r in records)
    assert [seen for seen, _ in ckpt.list_checkpoints(reference)] == [640, 960, 1280]
    snapshots = SnapshotStore.open(reference)
    assert snapshots.images_seen == list(range(0, 1281, 160))
    assert snapshots.frames().shape == (len(snapshots), 4, SIZE_PX, SIZE_PX, 3)
    assert not np.array_equal(snapshots.frames(0, 1), snapshots.frames(len(snapshots) - 1))  # it learned something
    for name in ("preview.png", "loss.png", "noise_bank.safetensors"):
        assert (reference / name).stat().st_size > 0
    bank = load_file(reference / "noise_bank.safetensors")["noise_bank"]
    assert torch.equal(bank, load_file(ckpt.latest_checkpoint(reference))["noise_bank"])
    generator, config = ckpt.load_generator(reference)
    with torch.no_grad():
        rendered = to_uint8(generator(latent_from_gaussian(bank, config.model.latent))).numpy()
    assert np.array_equal(rendered, snapshots.frames(len(snapshots) - 1)[0])  # snapshots are EMA-G on the bank


def test_resume_after_sigkill_repeats_the_uninterrupted_run(store, reference, tmp_path):
    run_dir = tmp_path / "killed"
    args = cli_args(tiny_config(store), run_dir)
    signal_cli_after_a_checkpoint(args, run_dir, signal.SIGKILL)
    assert ckpt.list_checkpoints(run_dir)[-1][0] < TOTAL_IMAGES, "the run finished before it could be killed"

    assert main(args) == 0  # the same command again (in this process: one thread, as the killed one)
    assert_same_run(run_dir, reference)


def test_ctrl_c_saves_a_checkpoint_draws_the_loss_curve_and_resumes_identically(store, reference, tmp_path):
    run_dir = tmp_path / "interrupted"
    args = cli_args(tiny_config(store), run_dir)
    process = signal_cli_after_a_checkpoint(args, run_dir, signal.SIGINT)
    assert process.returncode == 130
    assert "re-run the same command" in process.stderr.read()
    stopped_at = ckpt.list_checkpoints(run_dir)[-1][0]
    assert stopped_at < TOTAL_IMAGES and (run_dir / "loss.png").exists()

    assert main(args) == 0
    assert_same_run(run_dir, reference)


def test_time_budget_stops_cleanly_and_the_same_command_continues(store, reference, tmp_path):
    run_dir = tmp_path / "budget"
    stopped = train(tiny_config(store, minutes=0.5 / 60), run_dir)
    assert not stopped.finished and 0 < stopped.images_seen < TOTAL_IMAGES
    assert ckpt.list_checkpoints(run_dir)[-1][0] == stopped.images_seen
    finished = train(tiny_config(store), run_dir)
    assert finished.finished and finished.images_seen == TOTAL_IMAGES
    assert_same_run(run_dir, reference)


def test_training_further_on_resume_keeps_all_history(store, reference, tmp_path):
    run_dir = tmp_path / "further"
    train(tiny_config(store, images_total=960), run_dir)
    result = train(tiny_config(store), run_dir)  # the schedule raised to TOTAL_IMAGES: allowed, not "other settings"
    assert result.images_seen == TOTAL_IMAGES
    assert read_config_toml(run_dir / "config.toml").images_total == TOTAL_IMAGES
    assert_same_run(run_dir, reference)
    again = train(tiny_config(store), run_dir)  # nothing left to do
    assert again.finished and again.images_seen == TOTAL_IMAGES


def test_nan_loss_stops_the_run_and_offers_the_last_good_checkpoint(store, tmp_path):
    run_dir = tmp_path / "diverging"
    with pytest.raises(RunError, match="--resume-from") as caught:
        train(tiny_config(store, lr=1e30), run_dir)
    message = str(caught.value)
    last_good = Path(message.split("--resume-from ")[1].split(" ")[0])
    assert last_good.exists() and str(run_dir) in message and "\n" not in message
    for _, path in ckpt.list_checkpoints(run_dir):
        assert all(torch.isfinite(t.float()).all() for t in load_file(path).values())
    assert (run_dir / "loss.png").exists()

    result = train(tiny_config(store, images_total=320), run_dir, resume_from=last_good)  # with a sane lr again
    assert result.finished and read_config_toml(run_dir / "config.toml").lr == tiny_config(store).lr


def test_resume_from_an_earlier_checkpoint_drops_what_came_after(store, tmp_path):
    run_dir = tmp_path / "rewind"
    train(tiny_config(store, images_total=960), run_dir)
    assert [seen for seen, _ in ckpt.list_checkpoints(run_dir)] == [320, 640, 960]
    earlier = ckpt.list_checkpoints(run_dir)[1][1]
    train(tiny_config(store, images_total=800, lr=1e-4), run_dir, resume_from=earlier)
    assert [seen for seen, _ in ckpt.list_checkpoints(run_dir)] == [320, 640, 800]
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["images_seen"] for r in records] == list(range(80, 801, 80))
    assert SnapshotStore.open(run_dir).images_seen == [0, 160, 320, 480, 640, 800]


def test_other_settings_are_refused_unless_forced(store, tmp_path):
    run_dir = tmp_path / "settings"
    train(tiny_config(store, images_total=160), run_dir)
    with pytest.raises(RunError, match=r"lr: 0\.0002 -> 0\.001.*--force"):
        train(tiny_config(store, images_total=160, lr=1e-3), run_dir)
    result = train(tiny_config(store, images_total=80, lr=1e-3), run_dir, force=True)
    assert result.images_seen == 80  # started over, not continued from 160
    assert read_config_toml(run_dir / "config.toml").lr == 1e-3
    assert [seen for seen, _ in ckpt.list_checkpoints(run_dir)] == [0, 80]


def test_a_missing_store_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="nowhere"):
        train(tiny_config(tmp_path / "nowhere"), tmp_path / "run")


def test_an_empty_store_is_a_store_error(tmp_path):
    empty = make_store(tmp_path / "empty", np.zeros((0, SIZE_PX, SIZE_PX, 3), np.uint8))
    with pytest.raises(StoreError, match="empty"):
        train(tiny_config(empty), tmp_path / "run")


def test_a_store_of_another_size_than_the_model_is_a_store_error(store, tmp_path):
    config = tiny_config(store, model=ModelConfig(size_px=(48, 48), width=4, z_dim=8))
    with pytest.raises(StoreError, match="32x32 px but the model makes 48x48 px"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unwritable_run_directory_is_a_run_error(store, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the runs folder should be")
    with pytest.raises(RunError, match="cannot write"):
        train(tiny_config(store), blocker / "run")


def test_dry_run_trains_one_step_on_random_frames_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dry_run(tiny_config(""))
    assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_loss"])
    assert result["snapshot_shape"] == (4, 3, SIZE_PX, SIZE_PX)
    assert main(["train", "--dry-run", "--size", "32", "--width", "4", "--batch-size", "4", "--device", "cpu"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_bad_input_on_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "--run", str(tmp_path / "run"), "--size", "32"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("vjgan: error:") and "nowhere" in error and "\n" not in error


def test_cli_epochs_form_sets_the_schedule(store, tmp_path):
    args = cli_args(tiny_config(store), tmp_path / "epochs")
    args[args.index("--images") : args.index("--images") + 2] = ["--epochs", "2", "--images-per-epoch", "80"]
    args.remove("--snapshot-every"), args.remove("160")
    assert main(args) == 0
    config = read_config_toml(tmp_path / "epochs" / "config.toml")
    assert (config.images_total, config.snapshot_every_images) == (160, 80)
    assert SnapshotStore.open(tmp_path / "epochs").images_seen == [0, 80, 160]


def test_torchrun_trains_data_parallel_with_rank_zero_writing(store, tmp_path):
    run_dir = tmp_path / "ddp"
    config = tiny_config(store, images_total=320)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "vjgan",
        *cli_args(config, run_dir),
    ]
    command[command.index("--run")] = "--run-dir"  # torchrun's own parser would take --run for its --run-path
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]  # written once, by rank 0: 8 images a step, 4 per rank
    assert SnapshotStore.open(run_dir).images_seen == [0, 160, 320]
    final = load_file(ckpt.latest_checkpoint(run_dir))
    assert ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))["world_size"] == 2
    assert not torch.equal(final["rng.batch.rank0"], final["rng.batch.rank1"])  # each rank samples its own batches
    # the trainer checks at every checkpoint that all ranks hold identical weights (else it fails)
    assert "differ between ranks" not in done.stderr


def test_resume_from_a_checkpoint_of_another_model_is_refused_before_touching_the_run(store, tmp_path):
    run_dir = tmp_path / "model"
    train(tiny_config(store, images_total=80), run_dir)
    wider = tiny_config(store, model=ModelConfig(size_px=(SIZE_PX, SIZE_PX), width=8, z_dim=8))
    with pytest.raises(RunError, match="another model"):
        train(wider, run_dir, resume_from=ckpt.latest_checkpoint(run_dir))
    assert read_config_toml(run_dir / "config.toml").model.width == 4
