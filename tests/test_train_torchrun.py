"""torchrun runs killed and resumed (CPU, gloo): a 2-rank run SIGKILLed after a checkpoint continues on
2 ranks, or on 1 rank holding both batch shards, to the weights of the run never interrupted; a 1-rank
run continues on 2 ranks with its batch split afresh.

Every launch pays torchrun and two torch imports (~5 s of CPU each), so the runs are tiny and shared.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import assert_same_run, checkpoint_names, cli_args, store, tiny_config  # noqa: F401 (fixture)

from vjgan.cli import main
from vjgan.run import checkpoint as ckpt
from vjgan.run.snapshots import SnapshotStore
from vjgan.train.config import TrainConfig
from vjgan.train.distributed import World
from vjgan.train.loop import train
from vjgan.train.state import batch_shard_count, held_shards

TOTAL_IMAGES = 320  # 40 steps of 8 images, 4 a rank
CHECKPOINT_EVERY_IMAGES = 80  # a checkpoint every 10 steps: a kill after the first leaves 30 steps to redo
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # as in-process tests (conftest): one thread, same sums


def run_config(store: Path, images_total: int = TOTAL_IMAGES) -> TrainConfig:
    return tiny_config(store, images_total=images_total, checkpoint_every_images=CHECKPOINT_EVERY_IMAGES)


def run_args(store: Path, run_dir: Path) -> list[str]:
    args = cli_args(run_config(store), run_dir)
    args[args.index("--checkpoint-every") + 1] = str(CHECKPOINT_EVERY_IMAGES)
    return args


def torchrun(args: list[str], ranks: int = 2) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(ranks),
        "-m",
        "vjgan",
        *args,
    ]
    command[command.index("--run")] = "--run-dir"  # torchrun's own parser would take --run for its --run-path
    return command


def run_torchrun(args: list[str]) -> subprocess.CompletedProcess:
    """A torchrun job trained to the end: both ranks leave cleanly, and rank 0 alone reports the last checkpoint."""
    done = subprocess.run(torchrun(args), env=ONE_THREAD, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = "".join((done.stdout + done.stderr).split())  # rich wraps long paths at 80 columns
    assert printed.count("trainedon") == 1, done.stderr[-3000:]
    assert f"/images-{TOTAL_IMAGES:012d}.safetensors" in printed.split("trainedon")[1]
    return done


def kill_torchrun_after_a_checkpoint(args: list[str], run_dir: Path) -> None:
    """SIGKILL both ranks and torchrun once a trained checkpoint is saved. torchrun starts each rank in a
    session of its own: killing torchrun's process group would leave the ranks training."""
    process = subprocess.Popen(torchrun(args), env=ONE_THREAD, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(seen >= CHECKPOINT_EVERY_IMAGES for seen in checkpoint_names(run_dir)):
        assert process.poll() is None and time.monotonic() < deadline, f"no checkpoint came: {process.stderr.read()}"
        time.sleep(0.002)
    ranks = child_pids(process.pid)
    for pid in ranks:
        os.kill(pid, signal.SIGKILL)
    process.kill()
    process.wait()
    assert len(ranks) == 2
    while any(alive(pid) for pid in ranks):  # SIGKILL is delivered at the ranks' next return to user space
        assert time.monotonic() < deadline
        time.sleep(0.002)
    assert ckpt.list_checkpoints(run_dir)[-1][0] < TOTAL_IMAGES, "the run finished before it could be killed"


def child_pids(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    """Still running (a killed child not yet reaped by its dead parent is a zombie: not alive)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def uninterrupted(store, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("torchrun") / "uninterrupted"
    run_torchrun(run_args(store, run_dir))
    return run_dir


@pytest.fixture(scope="module")
def killed(store, tmp_path_factory) -> Path:
    """A 2-rank run killed with SIGKILL after a checkpoint; copy it before resuming it."""
    run_dir = tmp_path_factory.mktemp("torchrun") / "killed"
    kill_torchrun_after_a_checkpoint(run_args(store, run_dir), run_dir)
    return run_dir


def test_a_killed_2_rank_run_resumed_on_2_ranks_repeats_the_uninterrupted_run(store, uninterrupted, killed, tmp_path):
    run_dir = tmp_path / "resumed"
    shutil.copytree(killed, run_dir)
    run_torchrun(run_args(store, run_dir))
    assert_same_run(run_dir, uninterrupted)  # weights, Adam and random states, log losses, snapshot frames


def test_a_killed_2_rank_run_resumed_on_1_rank_reaches_the_same_weights(store, uninterrupted, killed, tmp_path):
    """One process holds both batch shards and computes each as its rank did: same batches, same BatchNorm
    statistics, gradients summed a + b and halved as the all-reduce does. Only the log's loss means are
    summed in another order (per step over the two shards, not per rank over the steps): float32 rounding."""
    run_dir = tmp_path / "one-rank"
    shutil.copytree(killed, run_dir)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks ran with one thread each: the same kernels, the same sums
    try:
        assert main(run_args(store, run_dir)) == 0
    finally:
        torch.set_num_threads(torch_threads)
    final, expected = load_file(ckpt.latest_checkpoint(run_dir)), load_file(ckpt.latest_checkpoint(uninterrupted))
    assert ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))["world_size"] == 1
    per_rank = {"loss_sums.rank1"}  # the open log window's sums are kept per rank, the rest per run or per shard
    assert final.keys() == expected.keys() - per_rank
    assert [
        name for name in final if name not in per_rank | {"loss_sums.rank0"} and not torch.equal(final[name], expected[name])
    ] == []
    assert SnapshotStore.open(run_dir).images_seen == SnapshotStore.open(uninterrupted).images_seen
    assert (SnapshotStore.open(run_dir).frames() == SnapshotStore.open(uninterrupted).frames()).all()
    logs = [[json.loads(line) for line in open(path / "log.jsonl")] for path in (run_dir, uninterrupted)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]] == [10, 20, 30, 40]
    for record, expected_record in zip(*logs):
        losses, expected_losses = [(r["d_loss"], r["g_loss"]) for r in (record, expected_record)]
        assert losses == pytest.approx(expected_losses, rel=1e-6)


def test_ranks_streaming_their_own_frames_from_disk_train_the_same_run(store, uninterrupted, tmp_path):
    """Each rank reads only the frames of its batch shard, drawn by its own stream: the same batches as the
    run with the whole store on every rank."""
    run_dir = tmp_path / "streamed"
    run_torchrun([*run_args(store, run_dir), "--data", "stream"])
    assert_same_run(run_dir, uninterrupted)


def test_a_1_rank_run_resumed_on_2_ranks_splits_its_batch_afresh(store, tmp_path):
    """One batch shard cannot be shared by two ranks: from the checkpoint on, each batch is split two ways,
    each shard with fresh streams seeded from the run's seed, the shard and the images seen (say so)."""
    run_dir = tmp_path / "grown"
    train(run_config(store, TOTAL_IMAGES // 2), run_dir)
    done = run_torchrun(run_args(store, run_dir))
    assert "split 2 ways" in done.stdout + done.stderr
    final = load_file(ckpt.latest_checkpoint(run_dir))
    assert ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))["counters"]["images_seen"] == TOTAL_IMAGES
    assert not torch.equal(final["rng.batch.rank0"], final["rng.batch.rank1"])
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert SnapshotStore.open(run_dir).images_seen == [0, 160, 320]


@pytest.mark.parametrize(
    "saved, ranks, batch_size, shards",
    [
        (2, 2, 8, 2),  # as made: one shard a rank
        (2, 1, 8, 2),  # one rank holds both
        (4, 2, 8, 4),  # two a rank
        (1, 2, 8, 2),  # one shard cannot be shared: split afresh, one a rank
        (3, 2, 9, 2),  # unequal shares: split afresh
        (2, 1, 9, 1),  # a batch size (--resume-from) that the shards cannot split: split afresh
    ],
)
def test_a_resumed_run_keeps_its_batch_shards_where_every_rank_holds_an_equal_number(saved, ranks, batch_size, shards):
    assert batch_shard_count(saved, batch_size, World(0, ranks, torch.device("cpu"))) == shards


def test_rank_r_holds_every_ranks_th_shard_from_r():
    assert [held_shards(4, rank, 2) for rank in range(2)] == [[0, 2], [1, 3]]
    assert held_shards(2, 0, 1) == [0, 1]
