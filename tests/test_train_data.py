"""Streamed training data (issue 16): frames read from the shards on disk, a few steps ahead, with the same
draws as the whole store on the device, so a run is the same bit for bit either way and may switch on resume."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import assert_same_run, make_store, reference, store, tiny_config  # noqa: F401 (fixtures)

from vjgan.cli import main
from vjgan.errors import StoreError, VjganError
from vjgan.footage.store import NPY_HEADER_BYTES, FrameStore, ShardInfo, StoreSettings, StoreWriter, open_stores
from vjgan.train.config import TrainConfig
from vjgan.train.data import (
    RealFrames,
    StorePool,
    StreamedFrames,
    draw_batch,
    free_host_memory_bytes,
    load_training_data,
    to_images,
)
from vjgan.train.distributed import World
from vjgan.train.loop import train

CPU = World(rank=0, size=1, device=torch.device("cpu"))


def sharded_store(path: Path, lengths: list[int], size_px: int = 32, seed: int = 0) -> Path:
    """A store of random frames, one shard per entry of `lengths` (frames), written by the ingest writer."""
    frames = np.random.default_rng(seed).integers(0, 256, (sum(lengths), size_px, size_px, 3), dtype=np.uint8)
    with StoreWriter(path, path.name, StoreSettings((size_px, size_px), 30.0, "center")) as writer:
        start = 0
        for number, length in enumerate(lengths):
            shard = writer.new_shard(f"clip{number}.mp4")
            for frame in frames[start : start + length]:
                shard.append(frame)
            writer.commit(shard, ShardInfo("", f"clip{number}.mp4", f"sha256:{number}", length, 30.0, (64, 48), False))
            start += length
    return path


def test_positioned_reads_give_the_mapped_frames_in_any_order(tmp_path):
    store = FrameStore.open(sharded_store(tmp_path / "g", [5, 1, 9, 3]))
    rng = np.random.default_rng(1)
    runs = [np.arange(3, 9), np.arange(len(store) - 4, len(store))]  # consecutive frames across shard ends
    for indices in [rng.integers(0, len(store), 40), np.concatenate(runs), np.array([7, 7, 7, 0]), np.arange(0)]:
        out = np.empty((len(indices), 32, 32, 3), np.uint8)
        store.read_frames(indices, out)
        assert np.array_equal(out, store.frames_at(indices))
    with pytest.raises(IndexError):
        store.read_frames(np.array([len(store)]), np.empty((1, 32, 32, 3), np.uint8))
    store.close()


def test_a_pool_of_stores_reads_each_frame_from_its_own_store(tmp_path):
    first, second = sharded_store(tmp_path / "a", [4, 2], seed=1), sharded_store(tmp_path / "b", [3], seed=2)
    pool = StorePool(open_stores([first, second]))
    assert len(pool) == 9 and pool.source_spans() == [(0, 4), (4, 2), (6, 3)]
    everything = np.concatenate([FrameStore.open(first).all_frames(), FrameStore.open(second).all_frames()])
    indices = np.array([8, 0, 5, 6, 6, 3])
    out = np.empty((6, 32, 32, 3), np.uint8)
    pool.read_frames(indices, out)
    assert np.array_equal(out, everything[indices])
    copied = torch.empty((9, 32, 32, 3), dtype=torch.uint8)
    pool.copy_into(copied)
    assert np.array_equal(copied.numpy(), everything)


@pytest.mark.parametrize("balance", ["frames", "sources"])
def test_streamed_batches_are_the_in_memory_batches_and_leave_the_stream_where_they_would(tmp_path, balance):
    path = sharded_store(tmp_path / "g", [30, 3, 12])
    config = tiny_config(path, balance=balance)
    in_memory = load_training_data(dataclasses.replace(config, data="memory"), CPU)
    streamed = load_training_data(dataclasses.replace(config, data="stream"), CPU)
    assert isinstance(in_memory, RealFrames) and isinstance(streamed, StreamedFrames)
    try:
        memory_streams = [{"batch": torch.Generator().manual_seed(5)}, {"batch": torch.Generator().manual_seed(6)}]
        disk_streams = [{"batch": torch.Generator().manual_seed(5)}, {"batch": torch.Generator().manual_seed(6)}]
        for _ in range(7):  # more steps than are read ahead
            streamed.stage(disk_streams)
            for position in range(2):
                expected = in_memory.sample(position, 4, True, memory_streams[position]["batch"])
                assert torch.equal(streamed.sample(position, 4, True, disk_streams[position]["batch"]), expected)
                assert torch.equal(disk_streams[position]["batch"].get_state(), memory_streams[position]["batch"].get_state())
    finally:
        streamed.close()


def test_flips_mirror_about_half_the_batch_and_keep_the_rest():
    frames = torch.randint(0, 256, (32, 6, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    _, flips = draw_batch(32, 32, True, torch.Generator().manual_seed(0))
    images, plain = to_images(frames, flips), to_images(frames, None)
    assert torch.equal(images[~flips], plain[~flips]) and torch.equal(images[flips], plain[flips].flip(3))
    assert 4 < int(flips.sum()) < 28 and plain.is_contiguous(memory_format=torch.channels_last)


def test_a_streamed_run_is_the_in_memory_run_bit_for_bit(store, reference, tmp_path):
    run_dir = tmp_path / "streamed"
    train(tiny_config(store, data="stream"), run_dir)
    assert_same_run(run_dir, reference)  # weights, Adam and random states, log losses, snapshot frames


def test_a_run_switches_from_streamed_to_in_memory_on_resume_and_stays_the_same_run(store, reference, tmp_path):
    run_dir = tmp_path / "switched"
    half = tiny_config(store).images_total // 2
    train(tiny_config(store, data="stream", images_total=half), run_dir)
    train(tiny_config(store, data="memory"), run_dir)
    assert_same_run(run_dir, reference)


def test_auto_streams_a_store_over_the_budget_and_says_so(store, tmp_path, capsys):
    budget_gib = (24 * 32 * 32 * 3 - 1) / 1024**3  # one byte less than the store's frames
    assert isinstance(load_training_data(tiny_config(store, data_budget_gib=budget_gib * 2), CPU), RealFrames)
    streamed = load_training_data(tiny_config(store, data_budget_gib=budget_gib), CPU)
    streamed.close()
    assert isinstance(streamed, StreamedFrames)
    message = " ".join(capsys.readouterr().err.split())  # the console's line, unwrapped
    assert str(store) in message and "--data-budget" in message and "streaming" in message
    free = free_host_memory_bytes()
    assert free is not None and 0 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_data_settings_are_checked():
    with pytest.raises(VjganError, match="data='disk'"):
        TrainConfig(data="disk")
    with pytest.raises(VjganError, match="data_budget_gib=0"):
        TrainConfig(data_budget_gib=0)


def test_a_shard_damaged_while_streaming_stops_training_with_the_file_named(tmp_path):
    path = sharded_store(tmp_path / "g", [40, 40])
    config = tiny_config(path, data="stream")
    streamed = load_training_data(config, CPU)
    streams = [{"batch": torch.Generator().manual_seed(0)}]
    try:
        streamed.stage(streams)
        damaged = path / streamed.pool.stores[0].shards[1].file
        os.truncate(damaged, NPY_HEADER_BYTES + 2 * 32 * 32 * 3)  # another program cut the shard short
        with pytest.raises(StoreError, match=f"{damaged}: cannot read frames.*ends"):
            for _ in range(20):
                streamed.stage(streams)
    finally:
        streamed.close()


def test_the_command_line_streams_on_request(store, tmp_path, capsys):
    run_dir = tmp_path / "cli"
    args = ["train", str(store), "--run", str(run_dir), "--size", "32", "--width", "4", "--z-dim", "8", "--batch-size", "8"]
    args += ["--images", "64", "--noise-bank", "4", "--device", "cpu", "--data", "stream"]
    assert main(args) == 0
    assert "trained on 64 images" in " ".join(capsys.readouterr().err.split())
    args[-1] = "disk"
    with pytest.raises(SystemExit):  # argparse refuses the choice, naming them
        main(args)
    assert "invalid choice: 'disk' (choose from 'auto', 'memory', 'stream')" in capsys.readouterr().err


def read_rss_bytes() -> int:
    """This process's resident memory now (anonymous + file-backed pages)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_streaming_holds_a_batch_not_the_store(tmp_path):
    """Reading every frame of a 64 MiB store a batch at a time leaves the process no larger; the mapped
    reads of `frames_at` would keep every page touched resident (the comparison shows the measure works)."""
    path = make_store(
        tmp_path / "big", np.zeros((2400, 96, 96, 3), np.uint8) + np.arange(2400, dtype=np.uint8)[:, None, None, None]
    )
    store = FrameStore.open(path)
    out = np.empty((64, 96, 96, 3), np.uint8)
    before = read_rss_bytes()
    for start in range(0, len(store), 64):
        store.read_frames(np.arange(start, min(start + 64, len(store))), out[: min(64, len(store) - start)])
    streamed_growth = read_rss_bytes() - before
    mapped = FrameStore.open(path)
    for start in range(0, len(mapped), 64):
        mapped.frames_at(np.arange(start, min(start + 64, len(mapped))))
    mapped_growth = read_rss_bytes() - before - streamed_growth
    assert streamed_growth < 8 * 2**20 and mapped_growth > 48 * 2**20, (streamed_growth, mapped_growth)
