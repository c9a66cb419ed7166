"""`vjgan ingest --jobs 2` against `--jobs 1` on the same footage, and the scaling to more cores it implies.

    .venv/bin/python bench/ingest_jobs.py                     # /work/shared/footage, every genre
    .venv/bin/python bench/ingest_jobs.py --footage my/clips --rounds 3

Each round ingests the whole folder into a fresh store with --jobs 1, then with --jobs 2 (alternating, so
machine load hits both alike), and checks the two stores are the same bytes. Frames/s count stored frames
per wall second of the whole `ingest()` call, worker start-up included.

For the inference: with N workers, the parent (the one writer) still does, per shard, a rename and a manifest
rewrite; the workers do the rest. Per-file work seconds are timed in the --jobs 1 runs (file_done to
file_done), the writer's per-shard seconds by adopting real work shards into a store of the same number
of shards. N workers can then go at most min(N / work, 1 / writer) files per second (Amdahl, the writer
being the serial part), before the limits this machine cannot show (memory bandwidth, FFmpeg's own
threads, which each worker also starts).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vjgan.footage.ingest import AdoptedShard, IngestConfig, IngestListener, Source, ingest
from vjgan.footage.store import ShardInfo, ShardWriter, StoreWriter

ROUNDS = 2
CORES_INFERRED = 16


class FileTimer(IngestListener):
    """Seconds between consecutive files' ends: each file's own work in a --jobs 1 run."""

    def __init__(self):
        self.seconds: list[float] = []
        self.last = 0.0

    def started(self, sources) -> None:
        self.last = time.perf_counter()

    def file_done(self, outcome) -> None:
        now = time.perf_counter()
        if outcome.status == "added":
            self.seconds.append(now - self.last)
        self.last = now


def timed_ingest(footage: Path, out: Path, jobs: int, listener: IngestListener | None = None) -> tuple[int, float, float]:
    """(frames stored, wall seconds, CPU seconds of this process: all of it with --jobs 1) of one whole ingest."""
    started, cpu_started = time.perf_counter(), time.process_time()
    report = ingest(footage, out, IngestConfig(jobs=jobs), listener=listener)
    return report.frames_added, time.perf_counter() - started, time.process_time() - cpu_started


def store_bytes(data_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(data_dir).as_posix(): p.read_bytes()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def writer_seconds_per_shard(shards: int, frames_per_shard: int, folder: Path) -> float:
    """Median seconds the parent spends listing one finished work shard (rename + manifest rewrite)."""
    config = IngestConfig()
    seconds = []
    with StoreWriter(folder, "bench", config.settings) as writer:
        for index in range(shards):
            work = ShardWriter(folder / f"0000-work{index}.npy", (*config.size_px, 3))
            frame = np.zeros((*config.size_px, 3), np.uint8)
            for _ in range(frames_per_shard):
                work.append(frame)  # what a worker writes: not the figure timed here
            work.commit()
            info = ShardInfo(work.path.name, f"clip{index}.mp4", f"sha256:{index}", frames_per_shard, 30.0, (640, 360), False)
            started = time.perf_counter()
            writer.commit(AdoptedShard(writer, Source(Path(f"clip{index}.mp4"), "bench", f"clip{index}.mp4"), info), info)
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "footage")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    rates: dict[int, list[float]] = {1: [], 2: []}
    timer = FileTimer()
    with tempfile.TemporaryDirectory() as tmp:
        timed_ingest(args.footage, Path(tmp) / "warm-up", 1)  # lazy imports loaded, the sources in the page cache
        for round_index in range(args.rounds):
            stores = {}
            for jobs in (1, 2):
                stores[jobs] = Path(tmp) / f"r{round_index}-j{jobs}"
                frames, seconds, cpu_seconds = timed_ingest(args.footage, stores[jobs], jobs, timer if jobs == 1 else None)
                rates[jobs].append(frames / seconds)
                cores = f", {cpu_seconds / seconds:.2f} cores busy" if jobs == 1 else ""
                print(
                    f"round {round_index + 1} --jobs {jobs}: {frames:,} frames in {seconds:.2f} s",
                    f"= {frames / seconds:,.0f} frames/s{cores}",
                )
            assert store_bytes(stores[1]) == store_bytes(stores[2]), "the --jobs 2 store differs from the --jobs 1 store"
        files = len(timer.seconds) // args.rounds
        frames_per_file = frames // files
        writer_s = writer_seconds_per_shard(files, frames_per_file, Path(tmp) / "writer")
    work_s = statistics.median(timer.seconds)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median: --jobs 1 {one:,.0f} frames/s, --jobs 2 {two:,.0f} frames/s, ratio {two / one:.2f}")
    print(
        f"per file ({files} files, {frames_per_file} frames on average):",
        f"work {work_s * 1000:.0f} ms (the longest {max(timer.seconds) * 1000:.0f} ms), writer {writer_s * 1000:.1f} ms",
    )
    ceiling = min(CORES_INFERRED / work_s, 1 / writer_s) * frames_per_file
    print(
        f"inferred for {CORES_INFERRED} workers: at most {ceiling:,.0f} frames/s "
        f"({ceiling / one:.1f}x --jobs 1; the writer alone would allow {frames_per_file / writer_s:,.0f})"
    )


if __name__ == "__main__":
    main()
