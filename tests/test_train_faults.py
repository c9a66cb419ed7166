"""Training under real faults: a file-size limit (the kernel's EFBIG, as a full disk gives ENOSPC) on every
kind of run file, SIGKILL at random instants (checkpoint saves included), damaged run files, and a store
that moved. After each, what was finished is intact and the next run ends where an uninterrupted one does,
bit for bit on the CPU. Nothing is patched: children are forked from this process (torch already imported)
and really limited or killed."""

import dataclasses
import json
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from faults import assert_one_line_error, fork_and_kill, fork_child, fork_vjgan, wait_child
from media import gradient_frames
from test_train import SIZE_PX, assert_same_run, cli_args, make_store, tiny_config

from vjgan.cli import main
from vjgan.errors import OutputError
from vjgan.files import PARTIAL_SUFFIX
from vjgan.run import checkpoint as ckpt
from vjgan.run.directory import RunDir, read_config_toml
from vjgan.run.snapshots import SnapshotStore
from vjgan.train.loop import train

TOTAL_IMAGES = 960  # 120 steps of 8
CHECKPOINT_EVERY = 16  # images: a save every other step, so saves are a large share of the time a kill can land in
BANK = 32  # noise bank: a 98,304-byte snapshot row, so frames.u8 outgrows a checkpoint (364 kB) mid-run
ROW_BYTES = BANK * SIZE_PX * SIZE_PX * 3
KILLS = 30
KILL_SEED = 12


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("data") / "genre", gradient_frames(24, SIZE_PX, SIZE_PX))


def fault_config(store: Path):
    return tiny_config(store, images_total=TOTAL_IMAGES, checkpoint_every_images=CHECKPOINT_EVERY, noise_bank_size=BANK)


def fault_args(store: Path, run_dir: Path) -> list[str]:
    """`vjgan train` for `fault_config`."""
    args = cli_args(fault_config(store), run_dir)
    for flag, value in (("--checkpoint-every", CHECKPOINT_EVERY), ("--noise-bank", BANK)):
        args[args.index(flag) + 1] = str(value)
    return args


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory) -> Path:
    """The uninterrupted run every faulted one must end up as."""
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    train(fault_config(store), run_dir)
    return run_dir


def assert_consistent(run_dir: Path) -> None:
    """What a kill or a refused write may leave: never a damaged checkpoint under its final name, never a
    snapshot index listing rows frames.u8 does not hold, and a config that reads."""
    newest, damaged = ckpt.newest_checkpoint(run_dir)
    assert damaged == []
    if newest is not None:
        ckpt.read_checkpoint(newest)
    if (run_dir / "snapshots" / "index.json").exists():
        frames = run_dir / "snapshots" / "frames.u8"
        assert (frames.stat().st_size if frames.exists() else 0) >= len(SnapshotStore.open(run_dir)) * ROW_BYTES
    if (run_dir / "config.toml").exists():
        read_config_toml(run_dir / "config.toml")


# fsize limit, the file it stops, and the newest checkpoint left (None: none yet)
LIMITS = [
    (400, "config.toml", None),  # the first file written
    (200_000, "images-000000000016.safetensors", 0),  # the first with Adam state (364 kB): repro 2, a SafetensorError
    (400_000, "frames.u8", 624),  # the 5th snapshot row (491,520 bytes), after 40 checkpoints
]


@pytest.mark.parametrize(("limit_bytes", "file_name", "newest_left"), LIMITS, ids=[name for _, name, _ in LIMITS])
def test_a_file_size_limit_ends_in_one_line_and_the_next_run_finishes_identically(
    store, reference, tmp_path, limit_bytes, file_name, newest_left
):
    run_dir = tmp_path / "run"
    args = fault_args(store, run_dir)
    assert_one_line_error(
        fork_vjgan(*args, fsize_limit_bytes=limit_bytes), file_name, "File too large", "what was finished before is kept"
    )
    assert_consistent(run_dir)
    checkpoints = ckpt.list_checkpoints(run_dir)
    assert (checkpoints[-1][0] if checkpoints else None) == newest_left
    assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))
    if newest_left is not None:  # (with none, the next run is a first run: the reference itself)
        assert main(args) == 0  # without the limit, the same command resumes from the newest checkpoint
        assert_same_run(run_dir, reference)


def kill_during_a_save(function, run_dir: Path, saves_before: int, timeout_seconds: float = 120) -> int | None:
    """Run `function()` in a forked child and SIGKILL it while its checkpoint save number `saves_before + 1`
    is being serialised (its `.partial` file exists); the child's exit code if it ended first, else None."""
    with open(os.devnull, "wb") as output:
        pid = fork_child(function, output, None)
    folder, saves_seen, deadline = run_dir / "checkpoints", set(), time.monotonic() + timeout_seconds
    while not (ended := os.waitpid(pid, os.WNOHANG))[0]:
        saving = {name for name in os.listdir(folder) if name.endswith(PARTIAL_SUFFIX)} if folder.is_dir() else set()
        saves_seen |= saving
        if saving and len(saves_seen) > saves_before or time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            wait_child(pid, timeout_seconds)
            return None
    return os.waitstatus_to_exitcode(ended[1])


def test_kill_at_random_instants_then_resume_repeats_the_uninterrupted_run(store, reference, tmp_path):
    """SIGKILL at 30 seeded random moments: every other one at a random instant, the others while a checkpoint
    is being serialised (its `.partial` exists). After each the run is consistent; resumed to the end it is
    bit-identical to the uninterrupted run."""
    run_dir = tmp_path / "killed"
    config = fault_config(store)
    rng = random.Random(KILL_SEED)
    kills = during_save = finished = 0
    while kills < KILLS and finished < KILLS:
        if kills % 2:
            code = kill_during_a_save(lambda: train(config, run_dir) and 0, run_dir, saves_before=rng.randint(0, 2))
        else:
            code = fork_and_kill(lambda: train(config, run_dir) and 0, rng.uniform(0.02, 0.35))
        if code is not None:  # the run ended before its kill (a fast machine): start it over, so every kill lands in one
            assert code == 0
            assert_same_run(run_dir, reference)
            shutil.rmtree(run_dir)
            finished += 1
            continue
        kills += 1
        during_save += any(run_dir.glob(f"checkpoints/*{PARTIAL_SUFFIX}"))
        assert_consistent(run_dir)
    print(f"{kills} kills, {during_save} of them during a checkpoint save")
    assert kills == KILLS and during_save >= KILLS // 3
    train(config, run_dir)
    assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))
    assert_same_run(run_dir, reference)


def rewound_copy(reference: Path, run_dir: Path, keep_up_to_images: int) -> Path:
    """The reference run as a kill leaves it: checkpoints after `keep_up_to_images` never written, log
    and snapshots ahead of the newest checkpoint."""
    shutil.copytree(reference, run_dir)
    for seen, path in ckpt.list_checkpoints(run_dir):
        if seen > keep_up_to_images:
            path.unlink()
    return run_dir


def test_a_half_written_log_line_and_a_lost_snapshot_index_are_repaired_at_resume(store, reference, tmp_path, capsys):
    run_dir = rewound_copy(reference, tmp_path / "run", 928)
    with open(run_dir / "log.jsonl", "ab") as log:
        log.write(b'{"step": 121, "images_se')  # an append cut short by a full disk
    (run_dir / "snapshots" / "index.json").unlink()
    train(fault_config(store), run_dir)
    err = capsys.readouterr().err
    assert "log.jsonl: 1 damaged line(s) dropped" in err
    assert "index.json: missing; snapshot index rebuilt from the checkpoint (6 snapshots)" in err
    assert_same_run(run_dir, reference)


def test_a_log_append_refused_by_the_disk_names_the_log_and_the_half_line_is_repaired_at_resume(
    store, reference, tmp_path, capsys
):
    run_dir = rewound_copy(reference, tmp_path / "run", 928)
    limit_bytes = (run_dir / "log.jsonl").stat().st_size + 20  # the next record gets 20 of its ~130 bytes onto the disk
    record = {"step": 999, "images_seen": 7992, "d_loss": 0.5, "g_loss": 0.5, "images_per_second": 1.0, "seconds": 1.0}

    def append_under_the_limit() -> int:
        try:
            RunDir(run_dir).append_log(record)
        except OutputError as error:
            print(error)
            return 3
        return 0

    with tempfile.TemporaryFile() as output:
        assert wait_child(fork_child(append_under_the_limit, output, limit_bytes), 60) == 3
        output.seek(0)
        message = output.read().decode()
    assert "log.jsonl: cannot write the training log (File too large)" in message and message.count("\n") == 1
    train(fault_config(store), run_dir)
    assert "log.jsonl: 1 damaged line(s) dropped" in capsys.readouterr().err
    assert_same_run(run_dir, reference)


def test_snapshot_frames_cut_short_are_cut_from_the_index_at_resume(store, reference, tmp_path, capsys):
    run_dir = rewound_copy(reference, tmp_path / "run", 928)
    frames = run_dir / "snapshots" / "frames.u8"
    os.truncate(frames, 3 * ROW_BYTES + ROW_BYTES // 2)
    train(fault_config(store), run_dir)
    assert "frames.u8: holds 3 whole snapshots, its index 7; the index is cut to 3" in capsys.readouterr().err
    snapshots = SnapshotStore.open(run_dir)
    assert snapshots.images_seen == [0, 160, 320, 960]  # 480..800 are lost with the bytes; 960 taken again
    expected = SnapshotStore.open(reference)
    assert np.array_equal(snapshots.frames(), expected.frames()[[0, 1, 2, 6]])


def test_a_damaged_newest_checkpoint_is_kept_aside_and_training_resumes_from_the_one_before(store, reference, tmp_path, capsys):
    run_dir = rewound_copy(reference, tmp_path / "run", 944)
    newest = ckpt.list_checkpoints(run_dir)[-1][1]
    os.truncate(newest, newest.stat().st_size // 2)
    train(fault_config(store), run_dir)
    line = capsys.readouterr().err
    assert "damaged checkpoint images-000000000944.safetensors" in line and "using images-000000000928.safetensors" in line
    assert (newest.parent / (newest.name + ".damaged")).exists()
    assert_same_run(run_dir, reference)


def test_a_run_resumes_from_another_directory_and_follows_its_store_when_it_moves(store, tmp_path, monkeypatch, capsys):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    shutil.copytree(store, here / "data" / "genre")
    elsewhere.mkdir()
    run_dir = (tmp_path / "run").resolve()
    short = dataclasses.replace(tiny_config(Path("data/genre")), images_total=160)
    monkeypatch.chdir(here)
    train(short, run_dir)
    assert read_config_toml(run_dir / "config.toml").store == str(here / "data" / "genre")  # recorded resolved

    monkeypatch.chdir(elsewhere)  # the same store by its full path, from another working directory
    assert train(dataclasses.replace(short, store=str(here / "data" / "genre"), images_total=320), run_dir).images_seen == 320
    moved = shutil.move(here / "data" / "genre", elsewhere / "genre")
    args = [*cli_args(tiny_config(Path(moved)), run_dir)]
    args[args.index("--images") + 1] = "480"
    capsys.readouterr()
    assert main(args) == 0
    assert "the run's store, moved from" in capsys.readouterr().err
    assert read_config_toml(run_dir / "config.toml").store == str(moved)

    assert main(["eval", str(run_dir), "--data", str(moved), "--samples", "16"]) == 0
    other = make_store(tmp_path / "other", gradient_frames(24, SIZE_PX, SIZE_PX, seed=1))  # another genre
    args[1] = str(other)
    capsys.readouterr()
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("vjgan: error:") and "not the store the run" in error and "genre" in error and "\n" not in error
    assert main(["eval", str(run_dir), "--data", str(other)]) == 1


def test_an_old_run_with_a_relative_store_path_keeps_working(store, tmp_path, monkeypatch):
    monkeypatch.chdir(store.parent)
    run_dir = tmp_path / "old"
    train(tiny_config(Path(store.name), images_total=80), run_dir)
    config_text = (run_dir / "config.toml").read_text().replace(str(store), store.name)  # as older vjgan wrote it
    (run_dir / "config.toml").write_text(config_text)
    (run_dir / "store.json").unlink()
    assert train(tiny_config(Path(store.name), images_total=160), run_dir).images_seen == 160
    assert json.loads((run_dir / "store.json").read_text())["genre"] == "genre"
