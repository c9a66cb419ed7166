"""Ingest under real environment faults: a file-size limit (the kernel's EFBIG, as a full disk gives
ENOSPC) refusing a shard or the manifest, and SIGKILL at random instants. After each, every committed
shard is whole and listed, and a plain re-run finishes the rest. Nothing is patched."""

import json
import shutil
import time

import numpy as np
import pytest
from faults import assert_one_line_error, fork_and_kill, fork_vjgan
from media import gradient_frames, write_video

from vjgan.errors import StoreError
from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.store import NPY_HEADER_BYTES, FrameStore

SIZE_PX = 16


def footage(root, frames_per_clip: dict[str, int]):
    """One genre folder `g` of tiny clips, named and as long as given, each unlike any already there."""
    (root / "g").mkdir(parents=True, exist_ok=True)
    for seed, (name, n_frames) in enumerate(frames_per_clip.items(), start=len(list((root / "g").iterdir()))):
        write_video(root / "g" / name, gradient_frames(n_frames, 32, 24, seed=seed), options={"preset": "ultrafast"})
    return root


def shard_bytes(frames: int, size_px: int = SIZE_PX) -> int:
    return NPY_HEADER_BYTES + frames * size_px * size_px * 3


def frames_by_source(store_dir) -> dict[str, np.ndarray]:
    store = FrameStore.open(store_dir)
    return {shard.source: np.array(store.shard_frames(index)) for index, shard in enumerate(store.shards)}


def unfinished(store_dir) -> list[str]:
    return sorted(p.name for p in store_dir.iterdir() if p.name.endswith((".partial", ".part")))


CLIPS = {"a.mp4": 10, "b.mp4": 10, "c.mp4": 60, "d.mp4": 10, "e.mp4": 10}  # c's shard is 46 kB, the others 8 kB


@pytest.mark.parametrize("limit_bytes", [shard_bytes(12), shard_bytes(30), shard_bytes(59)])
def test_a_shard_the_disk_refuses_is_one_line_and_the_rest_comes_on_the_next_run(tmp_path, limit_bytes):
    """RLIMIT_FSIZE lets the 10-frame shards through and refuses the 60-frame one, third of five."""
    footage(tmp_path / "in", CLIPS)
    args = ("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", str(SIZE_PX))
    refused = fork_vjgan(*args, fsize_limit_bytes=limit_bytes)
    store_dir = tmp_path / "data" / "g"
    line = assert_one_line_error(refused, str(store_dir / "0003-c.npy"), "cannot write a frame store shard (File too large)")
    assert line.endswith("what was finished before is kept")
    kept = frames_by_source(store_dir)
    assert {name: len(frames) for name, frames in kept.items()} == {"a.mp4": 10, "b.mp4": 10}
    assert unfinished(store_dir) == []

    finished = fork_vjgan(*args)
    assert finished.returncode == 0, finished.stdout
    complete = frames_by_source(store_dir)
    assert {name: len(frames) for name, frames in complete.items()} == CLIPS
    assert all(np.array_equal(complete[name], kept[name]) for name in kept)  # the refused run's shards, reused
    assert "removed" not in finished.stdout  # nothing was left to clean up


def test_a_manifest_the_disk_refuses_keeps_the_previous_one_and_the_next_run_completes(tmp_path):
    """4-pixel frames and long names make the manifest the biggest file: with one more shard listed it
    passes the limit."""
    long_names = {f"{letter * 200}.mp4": 3 for letter in "xyz"}
    footage(tmp_path / "in", {"a.mp4": 3})
    args = ("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", "4")
    assert fork_vjgan(*args).returncode == 0
    store_dir = tmp_path / "data" / "g"
    before = (store_dir / "manifest.json").read_bytes()
    footage(tmp_path / "in", long_names)
    limit_bytes = len(before) + 100  # the manifest with a 200-character name more no longer fits; shards do
    assert shard_bytes(3, size_px=4) < limit_bytes
    refused = fork_vjgan(*args, fsize_limit_bytes=limit_bytes)
    assert_one_line_error(refused, str(store_dir / "manifest.json"), "cannot write the frame store manifest (File too large)")
    assert (store_dir / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in store_dir.iterdir() if not p.name.startswith(".")) == ["0001-a.npy", "manifest.json"]

    assert fork_vjgan(*args).returncode == 0
    assert sorted(frames_by_source(store_dir)) == sorted(["a.mp4", *long_names])


KILL_INSTANTS = 30
KILL_CLIPS = {f"{index}.mp4": 20 + 8 * index for index in range(6)}  # 0.2-0.4 s of ingest on 2 busy cores


def test_ingest_killed_at_random_instants_always_leaves_a_consistent_store_that_a_rerun_completes(tmp_path):
    """SIGKILL at 30 seeded random instants that land mid-ingest (a real process forked from this one; an
    ingest that ends first narrows the window and counts as one more check): after each, the store does
    not exist yet or opens with every listed shard whole and equal to an uninterrupted ingest's; every
    third try starts from nothing, the others from what the last one left."""
    footage(tmp_path / "in", KILL_CLIPS)
    config = IngestConfig(size_px=SIZE_PX)

    def run(out: str = "data") -> None:
        ingest(tmp_path / "in", tmp_path / out, config)

    started = time.monotonic()
    assert fork_and_kill(lambda: run("reference"), 240) == 0
    whole_seconds = time.monotonic() - started  # an uninterrupted ingest, fork included
    reference = frames_by_source(tmp_path / "reference" / "g")
    store_dir = tmp_path / "data" / "g"

    rng = np.random.default_rng(12)
    outcomes = {"killed": 0, "finished": 0}
    window_seconds = whole_seconds  # narrowed whenever an ingest ends before its kill: machine load varies
    while outcomes["killed"] < KILL_INSTANTS and sum(outcomes.values()) < 3 * KILL_INSTANTS:
        instant = sum(outcomes.values())
        if instant % 3 == 0:
            shutil.rmtree(tmp_path / "data", ignore_errors=True)
        code = fork_and_kill(run, float(rng.uniform(0, window_seconds)))
        assert code in (None, 0), f"kill {instant}: the ingest failed on its own (exit {code})"
        outcomes["killed" if code is None else "finished"] += 1
        if code == 0:
            window_seconds *= 0.8
        if not (store_dir / "manifest.json").exists():
            continue
        try:
            stored = frames_by_source(store_dir)
        except StoreError as error:
            pytest.fail(f"kill {instant}: {error}")
        assert all(np.array_equal(frames, reference[name]) for name, frames in stored.items()), instant
    assert outcomes["killed"] == KILL_INSTANTS, outcomes

    assert fork_and_kill(run, 240) == 0
    completed = frames_by_source(store_dir)
    assert completed.keys() == reference.keys()
    assert all(np.array_equal(completed[name], reference[name]) for name in reference)
    assert unfinished(store_dir) == [] and json.loads((store_dir / "manifest.json").read_text())["genre"] == "g"
