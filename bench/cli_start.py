"""CLI start-up: how long `vjgan --help` and each command's `--help` take, and which pull in torch.

    .venv/bin/python bench/cli_start.py             # 9 runs of each command
    .venv/bin/python bench/cli_start.py --runs 21

Each command runs as `python -m vjgan ... --help` in a fresh interpreter; the table gives the median wall
and CPU seconds (the child's user + system time) and whether torch was imported on the command's path
(the command's flags registered and its modules imported, as `vjgan COMMAND` does before running).
Writes the `## CLI start` section of bench/RESULTS.md. The target: `vjgan --help` under 0.5 s on 2 cores.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

from results import write_section  # bench/results.py, next to this script

COMMANDS = [[], ["synth"], ["ingest"], ["train"], ["render"], ["generate"], ["eval"], ["demo"]]
# Registers a command's flags (importing its modules, as running it does) and says whether torch came with them.
TORCH_CHECK = "import sys; from vjgan.cli import build_parser; build_parser(sys.argv[1:]); print('torch' in sys.modules)"


def timed_help(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -m vjgan COMMAND --help`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vjgan", *command, "--help"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imports_torch(command: list[str]) -> bool:
    result = subprocess.run([sys.executable, "-c", TORCH_CHECK, *command], check=True, capture_output=True, text=True)
    return result.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (the median is reported)")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    args = parser.parse_args()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = ["| command | wall s (median) | CPU s (median) | imports torch |", "|---|---:|---:|---|"]
    for command in COMMANDS:
        timings = [timed_help(command) for _ in range(args.runs)]
        wall = statistics.median(wall for wall, _ in timings)
        cpu = statistics.median(cpu for _, cpu in timings)
        name = " ".join(["vjgan", *command, "--help"])
        rows.append(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {'yes' if imports_torch(command) else 'no'} |")
        print(rows[-1])
    lines = [
        f"`bench/cli_start.py`: median of {args.runs} runs of `python -m vjgan [COMMAND] --help`, each a fresh "
        f"interpreter, on {os.cpu_count()} cores (load average {load} at start). Only the command being run "
        "registers its flags and imports its modules (`vjgan.cli.build_parser`), so `vjgan --help` imports no "
        "stage; synth and ingest never import torch (also tested: tests/test_cli_start.py). Before issue 13 "
        "every command imported every stage and torch: ~2.4 s of CPU for `vjgan --help`.",
        "",
        *rows,
    ]
    if args.no_write:
        print("\n".join(lines))
    else:
        write_section("CLI start", lines)


if __name__ == "__main__":
    main()
