"""Footage-aware training data: near-duplicate frames dropped at ingest (`--dedup`), each frame's source
and time recorded, and batches balanced over sources (`--balance sources`)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from media import gradient_frames, write_video
from safetensors.torch import load_file

from vjgan.cli import main
from vjgan.errors import StoreError, VjganError
from vjgan.footage.dedup import NearDuplicateFilter
from vjgan.footage.ingest import IngestConfig, IngestListener, ingest
from vjgan.footage.store import FrameStore, ShardInfo, StoreSettings, StoreWriter
from vjgan.model.networks import ModelConfig
from vjgan.run import checkpoint as ckpt
from vjgan.run.directory import read_config_toml
from vjgan.train.config import TrainConfig
from vjgan.train.data import load_training_data
from vjgan.train.distributed import World
from vjgan.train.loop import train

STILL_FRAMES = 20  # the held opening of `still_then_moving`
MOVING_FRAMES = 20  # then every frame differs


def still_then_moving(path: Path) -> Path:
    """A 30 fps clip that holds its first picture for STILL_FRAMES frames, then moves for MOVING_FRAMES."""
    moving = gradient_frames(MOVING_FRAMES + 1, 64, 48)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, np.concatenate([np.repeat(moving[:1], STILL_FRAMES, axis=0), moving[1:]]))


class Outcomes(IngestListener):
    def __init__(self):
        self.outcomes = []

    def file_done(self, outcome) -> None:
        self.outcomes.append(outcome)


def ingest_folder(folder: Path, data_dir: Path, dedup: float = 0.0):
    listener = Outcomes()
    report = ingest(folder, data_dir, IngestConfig(size_px=16, dedup=dedup), genre="g", listener=listener)
    return report, {outcome.source.name: outcome for outcome in listener.outcomes}


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    still_then_moving(folder / "held.mp4")
    write_video(folder / "moving.mp4", gradient_frames(30, 64, 48, seed=1))
    return folder


# -- dedup at ingest ----------------------------------------------------------------------------------


def test_dedup_drops_a_still_stretch_keeps_the_first_frame_and_every_moving_one(footage, tmp_path):
    report, outcomes = ingest_folder(footage, tmp_path / "dedup", dedup=0.01)
    held, moving = outcomes["held.mp4"], outcomes["moving.mp4"]
    assert (held.frames, held.frames_decoded) == (1 + MOVING_FRAMES, STILL_FRAMES + MOVING_FRAMES)  # kept N of M
    assert (moving.frames, moving.frames_decoded) == (30, 30)
    [genre] = report.genres
    assert (genre.frames_added, genre.frames_decoded) == (51, 70)

    store = FrameStore.open(tmp_path / "dedup" / "g")
    plain = FrameStore.open(ingest_folder(footage, tmp_path / "plain")[0].genres[0].store_path)
    assert [shard.frames_decoded for shard in store.shards] == [40, 30] and store.dedup == 0.01
    assert list(store.frame_sources()) == [0] * 21 + [1] * 30
    times = store.frame_times_seconds()
    held_times, moving_times = times[:21], times[21:]
    assert np.allclose(held_times * 30, [0, *range(STILL_FRAMES, STILL_FRAMES + MOVING_FRAMES)], atol=1e-3)
    assert np.allclose(moving_times * 30, range(30), atol=1e-3)
    # each kept frame is the frame decoded at its time (the no-dedup store holds every decoded frame)
    decoded_index = np.round(times * 30).astype(int) + np.where(store.frame_sources() == 1, 40, 0)
    assert np.array_equal(store.all_frames(), plain.all_frames()[decoded_index])


def test_without_dedup_the_store_is_what_it_always_was(footage, tmp_path):
    ingest_folder(footage, tmp_path / "data")
    path = tmp_path / "data" / "g"
    manifest = json.loads((path / "manifest.json").read_text())
    assert "dedup" not in manifest and all(
        set(shard) == {"file", "source", "fingerprint", "frames", "source_fps", "source_size_wh", "truncated"}
        for shard in manifest["shards"]
    )
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "0001-held.npy",
        "0002-moving.npy",
        "manifest.json",
    ]
    store = FrameStore.open(path)
    assert store.dedup == 0.0 and len(store) == 70
    assert np.allclose(store.frame_times_seconds(), np.r_[np.arange(40), np.arange(30)] / 30)


def test_a_store_written_before_times_existed_still_opens(tmp_path):
    from conftest import write_frame_store

    store = FrameStore.open(write_frame_store(tmp_path / "old", gradient_frames(5, 8, 8)))
    assert list(store.frame_sources()) == [0] * 5 and np.allclose(store.frame_times_seconds(), np.arange(5) / 30)


def test_another_dedup_threshold_for_an_existing_store_is_refused_like_a_size_change(footage, tmp_path):
    ingest_folder(footage, tmp_path / "data", dedup=0.01)
    with pytest.raises(StoreError, match=r"made with --size 16 --fps 30 --crop center --dedup 0\.01, not .*--dedup 0\.02"):
        ingest_folder(footage, tmp_path / "data", dedup=0.02)
    with pytest.raises(StoreError, match=r"--dedup 0\.01, not --size 16 --fps 30 --crop center;"):
        ingest_folder(footage, tmp_path / "data")


def test_the_filter_compares_with_the_last_kept_frame_so_a_slow_drift_is_kept_in_steps():
    drift = [np.full((16, 16, 3), level, np.uint8) for level in range(0, 30)]  # 1/255 = 0.004 per frame
    near_duplicates = NearDuplicateFilter(0.01)
    kept = [level for level, frame in enumerate(drift) if near_duplicates.keep(frame)]
    assert kept == list(range(0, 30, 3))  # every third frame: 3/255 = 0.012 from the last kept one


def test_an_interrupted_dedup_ingest_leaves_no_unlisted_times_file(tmp_path):
    settings = StoreSettings((8, 8), 30.0, "center", dedup=0.01)
    with StoreWriter(tmp_path / "g", "g", settings) as writer:
        shard = writer.new_shard("a.mp4")
        shard.append(np.zeros((8, 8, 3), np.uint8), 0.0)
        writer.commit(shard, ShardInfo("", "a.mp4", "sha256:a", 0, 30.0, (8, 8), False, frames_decoded=3))
    (tmp_path / "g" / "0002-b.times.npy").write_bytes(b"left by a killed run")
    with StoreWriter(tmp_path / "g", "g", settings) as writer:
        assert writer.removed_leftovers == ["0002-b.times.npy"]
    store = FrameStore.open(tmp_path / "g")
    assert store.shards[0].times_file == "0001-a.times.npy" and list(store.frame_times_seconds()) == [0.0]


def test_cli_reports_kept_n_of_m_per_source_and_in_the_summary(footage, tmp_path, capsys):
    code = main(["ingest", str(footage), "--out", str(tmp_path / "data"), "--genre", "g", "--size", "16", "--dedup", "0.01"])
    err = capsys.readouterr().err
    assert code == 0
    assert "held.mp4: kept 21 of 40 frames" in err and "moving.mp4: kept 30 of 30 frames" in err
    [row] = [line for line in err.splitlines() if line.count("│") > 5 and "g" == line.split("│")[1].strip()]
    assert "51 of 70" in row
    assert main(["ingest", str(footage), "--out", str(tmp_path / "data"), "--genre", "g", "--dedup", "2"]) == 1
    assert "--dedup 2.0 must be" in capsys.readouterr().err


# -- balance over sources -----------------------------------------------------------------------------

SIZE_PX = 32


@pytest.fixture(scope="module")
def unbalanced_store(tmp_path_factory) -> Path:
    """One 200-frame source of dark moving frames and one 10-frame source of bright ones (the mean tells them apart)."""
    path = tmp_path_factory.mktemp("data") / "unbalanced"
    sources = {
        "long.mp4": gradient_frames(200, SIZE_PX, SIZE_PX) // 2,
        "short.mp4": 128 + gradient_frames(10, SIZE_PX, SIZE_PX, seed=1) // 2,
    }
    with StoreWriter(path, path.name, StoreSettings((SIZE_PX, SIZE_PX), 30.0, "center")) as writer:
        for name, frames in sources.items():
            shard = writer.new_shard(name)
            for frame in frames:
                shard.append(frame)
            writer.commit(shard, ShardInfo("", name, f"sha256:{name}", 0, 30.0, (64, 48), False))
    return path


def tiny_config(store: Path, **changes) -> TrainConfig:
    config = TrainConfig(
        model=ModelConfig(size_px=(SIZE_PX, SIZE_PX), width=4, z_dim=8),
        store=str(store),
        batch_size=8,
        ema_half_life_images=64,
        images_total=320,
        snapshot_every_images=160,
        checkpoint_every_images=160,
        log_every_steps=10,
        noise_bank_size=4,
        precision="fp32",
        device="cpu",
        balance="sources",
    )
    return dataclasses.replace(config, **changes)


CPU = World(rank=0, size=1, device=torch.device("cpu"))


def short_source_share(store: Path, balance: str, seed: int = 0) -> float:
    """Share of 20,000 real images drawn by the trainer's sampler that come from the 10-frame source."""
    real = load_training_data(tiny_config(store, balance=balance), CPU)
    images = real.sample(0, 20_000, False, torch.Generator().manual_seed(seed))  # (n, 3, H, W)
    return float((images.mean(dim=(1, 2, 3)) > 0).float().mean())  # bright (short source) frames average above 0


def test_balance_sources_draws_each_source_about_half_the_time(unbalanced_store):
    assert short_source_share(unbalanced_store, "sources") == pytest.approx(0.5, abs=0.02)  # 0.0035 is one sigma
    assert short_source_share(unbalanced_store, "frames") == pytest.approx(10 / 210, abs=0.01)


def test_balance_sources_is_uniform_within_a_source_and_reproducible(unbalanced_store):
    real = load_training_data(tiny_config(unbalanced_store), CPU)
    frames = real.frames
    assert real.source_spans.tolist() == [[0, 200], [200, 10]]
    draws = [real.sample(0, 4000, False, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*draws)
    short_frames = (frames[200:].permute(0, 3, 1, 2).float() / 127.5 - 1).flatten(1)  # (10, 3 * H * W)
    bright = draws[0][draws[0].mean(dim=(1, 2, 3)) > 0].flatten(1)  # (~2000, 3 * H * W)
    counts = torch.bincount(torch.cdist(bright, short_frames).argmin(dim=1), minlength=10)
    assert counts.min() > 0.7 * len(bright) / 10 and counts.max() < 1.3 * len(bright) / 10


def test_cli_trains_with_balance_sources_and_refuses_to_change_it_on_resume(unbalanced_store, tmp_path, capsys):
    args = [
        "train",
        str(unbalanced_store),
        "--run",
        str(tmp_path / "run"),
        "--balance",
        "sources",
        "--width",
        "4",
        "--z-dim",
        "8",
        "--batch-size",
        "8",
        "--images",
        "80",
        "--snapshot-every",
        "40",
        "--log-every",
        "5",
        "--noise-bank",
        "4",
        "--precision",
        "fp32",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    assert read_config_toml(tmp_path / "run" / "config.toml").balance == "sources"
    capsys.readouterr()
    args[args.index("sources")] = "frames"
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert "balance: 'sources' -> 'frames'" in error and "\n" not in error


def test_a_balanced_run_trained_further_repeats_the_uninterrupted_run(unbalanced_store, tmp_path):
    train(tiny_config(unbalanced_store), tmp_path / "whole")
    train(tiny_config(unbalanced_store, images_total=160), tmp_path / "resumed")
    train(tiny_config(unbalanced_store), tmp_path / "resumed")  # resumes from the 160-image checkpoint
    final, expected = (load_file(ckpt.latest_checkpoint(tmp_path / name)) for name in ("resumed", "whole"))
    assert final.keys() == expected.keys() and all(torch.equal(final[name], expected[name]) for name in final)


def test_an_unknown_balance_is_refused():
    with pytest.raises(VjganError, match="balance='clips'.*frames, sources"):
        TrainConfig(balance="clips")
