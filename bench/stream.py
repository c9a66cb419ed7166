"""Training from a store larger than memory: images/s streamed vs in memory, and the streamed run's memory.

    .venv/bin/python bench/stream.py                          # 96 px and 256 px, writes RESULTS.md
    .venv/bin/python bench/stream.py --sizes 96 --big-gib 7 --cap-gib 2 --seconds 90 --rounds 2

Per size: a "small" synthetic store that fits (--small-gib) and a "big" one several times the memory cap
(--big-gib), each a few hundred shards of moving random frames written by the ingest stage's own writer
(made once, kept under bench/_work/stream/). Then, alternating in each round so machine load hits all alike:

- memory:  the small store loaded onto the device (`--data memory`), the fastest path;
- stream:  the same small store streamed from disk (`--data stream`);
- big:     the big store under `--data auto` with a `--data-budget` of --budget-gib (so it streams), in a
           memory cgroup of --cap-gib (page cache included, so the store cannot sit in memory), its pages
           dropped from the OS cache before the run (posix_fadvise DONTNEED): every batch comes off the disk.

Each run is a fresh process training `modern` at --width for --seconds; images/s is the median of its log
windows after the first; memory is sampled every second (VmRSS) and the peak taken from VmHWM. Last, the
big store is loaded into memory (`--data memory`) under the same cgroup, to show the cap is real.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work" / "stream"
GIB = 1024**3
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
SHARD_FRAMES_BYTES = 32 * 2**20  # about this much per shard, like a few seconds of footage


def build_store(path: Path, size_px: int, gib: float) -> Path:
    """A store of about `gib` GiB of `size_px` frames; each shard a random image sliding sideways."""
    from vjgan.errors import StoreError
    from vjgan.footage.store import FrameStore, ShardInfo, StoreSettings, StoreWriter

    frame_bytes = size_px * size_px * 3
    total = int(gib * GIB) // frame_bytes
    try:
        if len(FrameStore.open(path)) == total:
            return path
    except StoreError:
        pass
    per_shard = max(SHARD_FRAMES_BYTES // frame_bytes, 1)
    rng = np.random.default_rng(size_px)
    print(f"writing {path} ({total:,} frames, {total * frame_bytes / GIB:.1f} GiB)", flush=True)
    with StoreWriter(path, path.name, StoreSettings((size_px, size_px), 30.0, "center")) as writer:
        for number, start in enumerate(range(0, total, per_shard)):
            frames = min(per_shard, total - start)
            base = rng.integers(0, 256, (size_px, size_px, 3), dtype=np.uint8)
            source = f"clip{number:05d}.mp4"
            shard = writer.new_shard(source)
            for i in range(frames):
                shard.append(np.roll(base, i, axis=1))
            writer.commit(shard, ShardInfo("", source, f"sha256:{number}", frames, 30.0, (size_px, size_px), False))
    return path


def drop_from_page_cache(store: Path) -> None:
    """Ask the OS to forget the store's cached pages, so the next reads come off the disk."""
    for shard in store.glob("*.npy"):
        descriptor = os.open(shard, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def make_cgroup(cap_bytes: int) -> Path | None:
    """A memory cgroup (v1) limited to `cap_bytes`, page cache included; None where this machine has none."""
    group = CGROUP_V1 / f"vjgan-bench-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(cap_bytes))
        return group
    except OSError as error:
        print(f"no memory cgroup ({error}): the cap is not enforced, memory is only measured")
        return None


def run_child(args: argparse.Namespace, store: Path, size_px: int, mode: str, cgroup: Path | None) -> dict:
    """One training run in a fresh process (in `cgroup` when given); its JSON report, or how it ended."""
    command = [sys.executable, __file__, "--child", str(store), "--child-size", str(size_px), "--child-mode", mode]
    command += ["--seconds", str(args.seconds), "--width", str(args.width), "--budget-gib", str(args.budget_gib)]

    def enter_cgroup():
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=enter_cgroup, timeout=args.seconds * 4 + 300)
    peak_group = int((cgroup / "memory.max_usage_in_bytes").read_text()) if cgroup is not None else None
    if cgroup is not None:
        (cgroup / "memory.max_usage_in_bytes").write_text("0")  # reset for the next run
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"mode": mode, "failed": f"exit {done.returncode}: {last}", "cgroup_peak_bytes": peak_group}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["cgroup_peak_bytes"] = peak_group
    return report


def child(args: argparse.Namespace) -> None:
    """Train for --seconds and print one JSON line: images/s, memory over time, peak memory."""
    import dataclasses

    from vjgan.model.networks import ModelConfig
    from vjgan.train.config import preset
    from vjgan.train.loop import train

    samples: list[tuple[float, int]] = []
    started = time.monotonic()

    def sample_memory():
        while True:
            samples.append((time.monotonic() - started, read_status_bytes("VmRSS")))
            time.sleep(1.0)

    threading.Thread(target=sample_memory, daemon=True).start()
    size = args.child_size
    base = preset("modern")
    config = dataclasses.replace(
        base,
        model=ModelConfig(**{**dataclasses.asdict(base.model), "size_px": (size, size), "width": args.width}),
        store=args.child,
        images_total=10**9,
        snapshot_every_images=10**9,
        checkpoint_every_images=10**9,
        log_every_steps=2,
        noise_bank_size=4,
        minutes=args.seconds / 60,
        device="cpu",
        data="auto" if args.child_mode == "big" else args.child_mode,
        data_budget_gib=args.budget_gib if args.child_mode == "big" else None,
    )
    run_dir = WORK / "runs" / f"{size}-{args.child_mode}"
    train(config, run_dir, force=True)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    rates = [record["images_per_second"] for record in records[1:]] or [records[-1]["images_per_second"]]
    print(
        json.dumps(
            {
                "mode": args.child_mode,
                "images_per_second": statistics.median(rates),
                "images": records[-1]["images_seen"],
                "rss_samples": samples,
                "peak_rss_bytes": read_status_bytes("VmHWM"),
            }
        )
    )


def read_status_bytes(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))) * 1024


def flatness(samples: list[tuple[float, int]]) -> str:
    """RSS at the quarters of the run (MiB): flat when the reader holds batches, not the store."""
    if len(samples) < 4:
        return "-"
    picks = [samples[min(int(len(samples) * q), len(samples) - 1)][1] for q in (0.25, 0.5, 0.75, 1.0)]
    return " / ".join(f"{value / 2**20:.0f}" for value in picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256])
    parser.add_argument("--small-gib", type=float, default=0.5)
    parser.add_argument("--big-gib", type=float, default=7.0)
    parser.add_argument("--cap-gib", type=float, default=2.0, help="memory cgroup limit of the big runs (page cache included)")
    parser.add_argument("--budget-gib", type=float, default=1.0, help="--data-budget of the big runs")
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    cgroup = make_cgroup(int(args.cap_gib * GIB))
    rows = []
    try:
        for size in args.sizes:
            small = build_store(WORK / f"small{size}", size, args.small_gib)
            big = build_store(WORK / f"big{size}", size, args.big_gib)
            results: dict[str, list[dict]] = {"memory": [], "stream": [], "big": []}
            for round_number in range(args.rounds):
                for mode in results:
                    store = big if mode == "big" else small
                    if mode == "big":
                        drop_from_page_cache(big)
                    report = run_child(args, store, size, mode, cgroup if mode == "big" else None)
                    results[mode].append(report)
                    print(f"{size} px round {round_number + 1} {mode}: {report}"[:300], flush=True)
            drop_from_page_cache(big)
            refused = run_child(args, big, size, "memory", cgroup)
            rows.append((size, results, refused))
    finally:
        if cgroup is not None:
            cgroup.rmdir()
    for row in rows:
        lines = table(args, *row)
        print("\n".join(lines))
        if not args.no_write:
            sys.path.insert(0, str(Path(__file__).parent))
            from results import write_section

            write_section(f"Streamed training data (issue 16), {row[0]} px", lines)


def table(args, size: int, results: dict[str, list[dict]], refused: dict) -> list[str]:
    load = os.getloadavg()
    lines = [
        f"`.venv/bin/python bench/stream.py --sizes {size} --small-gib {args.small_gib} "
        f"--big-gib {args.big_gib} --cap-gib {args.cap_gib} --budget-gib {args.budget_gib} --seconds {args.seconds:g} "
        f"--rounds {args.rounds} --width {args.width}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}). See the script's docstring for the method.",
        "",
        "| size | run | store | img/s: median (rounds) | vs memory | peak RSS | RSS at 1/4, 1/2, 3/4, end MiB | cgroup peak |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    memory_rate = statistics.median(r["images_per_second"] for r in results["memory"] if "failed" not in r)
    for mode, reports in results.items():
        good = [r for r in reports if "failed" not in r]
        if not good:
            lines.append(f"| {size} px | {mode} | | failed: {reports[0]['failed']} | | | | |")
            continue
        rates = [r["images_per_second"] for r in good]
        last = good[-1]
        store = f"{args.big_gib:g} GiB, cap {args.cap_gib:g} GiB" if mode == "big" else f"{args.small_gib:g} GiB"
        group = f"{last['cgroup_peak_bytes'] / 2**20:.0f} MiB" if last.get("cgroup_peak_bytes") else "-"
        lines.append(
            f"| {size} px | {mode} | {store} | {statistics.median(rates):.1f} ({', '.join(f'{r:.1f}' for r in rates)}) | "
            f"{statistics.median(rates) / memory_rate:.0%} | {max(r['peak_rss_bytes'] for r in good) / 2**20:.0f} MiB | "
            f"{flatness(last['rss_samples'])} | {group} |"
        )
    outcome = refused.get("failed") or f"ran ({refused['images_per_second']:.1f} img/s): the cap did not bind"
    if outcome == "exit -9: (no output)":
        outcome = "killed (SIGKILL) by the cgroup's OOM killer while loading"
    lines.append(f"| {size} px | big, --data memory | {args.big_gib:g} GiB, cap {args.cap_gib:g} GiB | {outcome} | | | | |")
    return lines


if __name__ == "__main__":
    main()
