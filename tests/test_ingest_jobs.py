"""`vjgan ingest --jobs N`: worker processes decode, the parent alone writes, and the store is the one a single
process makes. Every parallel ingest runs in a child forked from the test (faults.py): a forkserver started in
the test process itself could not be reused by later forked children."""

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from faults import TRACEBACK, child_env, fork_and_kill, fork_call, fork_vjgan, vjgan_command
from media import gradient_frames, write_video

from vjgan.footage.ingest import IngestConfig, IngestListener, ingest
from vjgan.footage.store import FrameStore

SIZE_PX = 16


def footage(root: Path) -> Path:
    """Two genres of tiny clips of different lengths, a copy of one clip under another name (skipped as
    already stored) and a file that is not a video."""
    for genre, seeds in (("g", range(4)), ("h", range(4, 6))):
        (root / genre).mkdir(parents=True)
        for seed in seeds:
            frames = gradient_frames(8 + 6 * seed, 32, 24, seed=seed)
            write_video(root / genre / f"clip{seed}.mp4", frames, options={"preset": "ultrafast"})
    shutil.copy(root / "g" / "clip1.mp4", root / "g" / "clip1 copy.mp4")
    (root / "g" / "broken.mp4").write_bytes(b"not a video" * 50)
    return root


def store_files(data_dir: Path) -> dict[str, bytes]:
    """Every file of every genre store (the lock file aside), by path relative to `data_dir`."""
    return {
        path.relative_to(data_dir).as_posix(): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def ingest_in_child(footage_dir: Path, data_dir: Path, config: IngestConfig, listener: IngestListener | None = None) -> int:
    return fork_call(lambda: 0 if ingest(footage_dir, data_dir, config, listener=listener).frames_added else 3).returncode


@pytest.mark.parametrize("dedup", [0.0, 0.01])
def test_two_jobs_make_the_same_store_as_one_byte_for_byte(tmp_path, dedup):
    """Shards, times files (with --dedup) and manifests of both genres are the same bytes; the broken file and the
    copy are reported the same way."""
    footage(tmp_path / "in")
    one = ingest(tmp_path / "in", tmp_path / "one", IngestConfig(size_px=SIZE_PX, dedup=dedup))
    assert ingest_in_child(tmp_path / "in", tmp_path / "two", IngestConfig(size_px=SIZE_PX, dedup=dedup, jobs=2)) == 0
    expected = store_files(tmp_path / "one")
    assert any(name.endswith(".times.npy") for name in expected) == (dedup > 0)
    assert store_files(tmp_path / "two") == expected
    assert [(g.files_added, g.files_skipped, g.files_failed) for g in one.genres] == [(4, 1, 1), (2, 0, 0)]


def test_a_broken_file_among_good_ones_is_reported_on_one_line_and_the_rest_is_stored(tmp_path):
    footage(tmp_path / "in")
    result = fork_vjgan("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", str(SIZE_PX), "--jobs", "2")
    assert result.returncode == 0, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert problems == [
        f"problem: {tmp_path / 'in' / 'g' / 'broken.mp4'}: not a video FFmpeg can read (Invalid data found when processing input)"
    ]
    stored = FrameStore.open(tmp_path / "data" / "g")
    assert [shard.source for shard in stored.shards] == [
        "clip0.mp4",
        "clip1 copy.mp4",
        "clip2.mp4",
        "clip3.mp4",
    ]  # clip1.mp4: the same content


def test_a_rerun_with_two_jobs_skips_finished_sources_and_adds_new_ones_after_them(tmp_path):
    footage(tmp_path / "in")
    args = ("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", str(SIZE_PX), "--jobs", "2")
    assert fork_vjgan(*args).returncode == 0
    before = store_files(tmp_path / "data")
    again = fork_vjgan(*args)
    assert again.returncode == 0 and store_files(tmp_path / "data") == before, again.stdout
    assert "│ g     │     0 │      5 │      1 │" in again.stdout  # added / already stored (the copy too) / failed
    write_video(tmp_path / "in" / "g" / "new.mp4", gradient_frames(9, 32, 24, seed=9), options={"preset": "ultrafast"})
    assert fork_vjgan(*args).returncode == 0
    assert [shard.file for shard in FrameStore.open(tmp_path / "data" / "g").shards][-1] == "0005-new.npy"


class KillAWorker(IngestListener):
    """SIGKILLs one worker process (a grandchild of this process: workers are forked by the forkserver) once the
    first file is done, and notes its pid in `record`."""

    def __init__(self, record: Path):
        self.record = record

    def file_done(self, outcome) -> None:
        if self.record.exists():
            return
        workers = [pid for child in children(os.getpid()) for pid in children(child)]
        os.kill(workers[0], signal.SIGKILL)
        self.record.write_text(str(workers[0]))


def children(pid: int) -> list[int]:
    """The pids of `pid`'s child processes, read from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue  # ended while we looked
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_a_killed_worker_breaks_no_file_its_files_are_retried_and_the_store_is_whole(tmp_path):
    footage(tmp_path / "in")
    config = IngestConfig(size_px=SIZE_PX)
    ingest(tmp_path / "in", tmp_path / "one", config)
    record = tmp_path / "killed"
    assert ingest_in_child(tmp_path / "in", tmp_path / "two", IngestConfig(size_px=SIZE_PX, jobs=2), KillAWorker(record)) == 0
    assert int(record.read_text()) > 0  # a worker was killed mid-run
    assert store_files(tmp_path / "two") == store_files(tmp_path / "one")


def test_jobs_below_one_is_refused_on_one_line(tmp_path):
    footage(tmp_path / "in")
    result = fork_vjgan("ingest", tmp_path / "in", "--out", tmp_path / "data", "--jobs", "0")
    assert result.returncode != 0
    assert result.stdout.strip() == "vjgan: error: ingest: --jobs 0 must be a whole number of at least 1 (files decoded at once)"


def long_footage(root: Path) -> Path:
    """One genre of six clips long enough (0.1-0.2 s of decoding each) for a signal to land mid-run."""
    (root / "g").mkdir(parents=True)
    for seed in range(6):
        write_video(root / "g" / f"{seed}.mp4", gradient_frames(80, 64, 48, seed=seed), options={"preset": "ultrafast"})
    return root


def first_shard_listed(store_dir: Path):
    return lambda: (store_dir / "manifest.json").exists()


def finished_files(store_dir: Path) -> set[str]:
    return {path.name for path in store_dir.iterdir() if not path.name.endswith(".partial")}


def assert_consistent_and_completed_by_a_rerun(tmp_path: Path, args: tuple) -> None:
    """The interrupted store lists whole shards equal to a single process's, and a re-run completes it to the single
    process's store."""
    store_dir = tmp_path / "data" / "g"
    ingest(tmp_path / "in", tmp_path / "one", IngestConfig(size_px=SIZE_PX))
    reference = store_files(tmp_path / "one")
    listed = FrameStore.open(store_dir).shards
    assert 0 < len(listed) < 6
    assert all((store_dir / shard.file).read_bytes() == reference[f"g/{shard.file}"] for shard in listed)
    assert fork_vjgan(*args).returncode == 0
    assert store_files(tmp_path / "data") == reference


def test_ctrl_c_with_two_jobs_stops_the_workers_and_keeps_the_finished_shards(tmp_path):
    long_footage(tmp_path / "in")
    args = ("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", str(SIZE_PX), "--jobs", "2")
    process = subprocess.Popen(vjgan_command(*args), env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while not first_shard_listed(tmp_path / "data" / "g")() and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "vjgan: interrupted; finished work is kept" in output and TRACEBACK not in output
    store = FrameStore.open(tmp_path / "data" / "g")  # the workers stopped before the store closed, which removed their files:
    assert finished_files(store.path) == {".lock", "manifest.json", *(shard.file for shard in store.shards)}
    assert_consistent_and_completed_by_a_rerun(tmp_path, args)


class RecordWorkers(IngestListener):
    """Writes the pids of the worker processes (grandchildren of this process) to `record` as files finish."""

    def __init__(self, record: Path):
        self.record = record

    def file_done(self, outcome) -> None:
        self.record.write_text(" ".join(str(pid) for child in children(os.getpid()) for pid in children(child)))


def running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_a_killed_ingest_with_two_jobs_leaves_a_consistent_store_and_no_worker_behind(tmp_path):
    """SIGKILL of the parent once its first shard is listed: its workers end too (a busy one would otherwise finish a
    work shard for nobody, an idle one wait forever); a re-run removes what they left and completes the store."""
    long_footage(tmp_path / "in")
    config, record = IngestConfig(size_px=SIZE_PX, jobs=2), tmp_path / "workers"
    store_dir = tmp_path / "data" / "g"
    code = fork_and_kill(
        lambda: ingest(tmp_path / "in", tmp_path / "data", config, listener=RecordWorkers(record)), 0, record.exists
    )
    assert code is None  # killed mid-run
    finished = finished_files(store_dir)  # listed shards, and maybe a work shard done before the kill
    workers = [int(pid) for pid in record.read_text().split()]
    assert workers
    time.sleep(1.0)
    assert not [pid for pid in workers if running(pid)]
    assert finished_files(store_dir) == finished
    args = ("ingest", tmp_path / "in", "--out", tmp_path / "data", "--size", str(SIZE_PX), "--jobs", "2")
    assert_consistent_and_completed_by_a_rerun(tmp_path, args)


def kill_whoever_opens(path: Path, until: threading.Event) -> None:
    """SIGKILL every worker process (a grandchild of this process) that has `path` open, until `until` is set: a
    stand-in for a file that crashes FFmpeg, found through /proc."""
    while not until.is_set():
        for pid in [pid for child in children(os.getpid()) for pid in children(child)]:
            try:
                if any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                continue  # ended while we looked
        time.sleep(0.001)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_a_file_that_crashes_its_worker_every_time_fails_alone_on_one_line(tmp_path):
    footage(tmp_path / "in")
    hostile = tmp_path / "in" / "g" / "crash.mp4"
    write_video(hostile, gradient_frames(300, 64, 48, seed=20), options={"preset": "ultrafast"})
    ingest(tmp_path / "in", tmp_path / "one", IngestConfig(size_px=SIZE_PX))  # the reference, crash.mp4 included
    report_file = tmp_path / "report"

    def run() -> int:
        done = threading.Event()
        threading.Thread(target=kill_whoever_opens, args=(hostile, done), daemon=True).start()
        report = ingest(tmp_path / "in", tmp_path / "two", IngestConfig(size_px=SIZE_PX, jobs=2))
        done.set()
        report_file.write_text("\n".join(problem.message for problem in report.problems))
        return 0

    assert fork_call(run).returncode == 0
    assert report_file.read_text().splitlines() == [
        f"{tmp_path / 'in' / 'g' / 'broken.mp4'}: not a video FFmpeg can read (Invalid data found when processing input)",
        f"{hostile}: crashed the process decoding it, twice (a decoder fault); nothing was kept from it",
    ]
    expected = {name: data for name, data in store_files(tmp_path / "one").items() if "crash" not in name}
    two = store_files(tmp_path / "two")
    assert {name: data for name, data in two.items() if name != "g/manifest.json"} == {
        name: data for name, data in expected.items() if name != "g/manifest.json"
    }
    assert [shard.source for shard in FrameStore.open(tmp_path / "two" / "g").shards] == [
        "clip0.mp4",
        "clip1 copy.mp4",
        "clip2.mp4",
        "clip3.mp4",
    ]
