"""Real faults for tests: a `vjgan` command in a child process under a file-size limit (a real EFBIG from
the kernel, as a full disk gives ENOSPC), or killed with SIGKILL at a chosen instant. Nothing is patched."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

TRACEBACK = "Traceback (most recent call last)"


def vjgan_command(*args) -> list[str]:
    return [sys.executable, "-m", "vjgan", *map(os.fsdecode, args)]


def child_env() -> dict[str, str]:
    """The test's environment for a child vjgan: one torch thread, the test's own numba cache, no colour."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "400"  # one error line stays one line
    return env


def run_vjgan(*args, fsize_limit_bytes: int | None = None, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `vjgan ARGS` to completion; with `fsize_limit_bytes` no file it writes may grow past that size
    (RLIMIT_FSIZE: the kernel refuses the write with EFBIG, as a full disk refuses it with ENOSPC)."""

    def limit():
        if fsize_limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit_bytes, fsize_limit_bytes))

    return subprocess.run(
        vjgan_command(*args), cwd=cwd, env=child_env(), preexec_fn=limit, capture_output=True, text=True,
        errors="replace", timeout=timeout,
    )  # fmt: skip


def kill_after(args, seconds: float, cwd: Path | None = None, timeout: float = 240) -> int | None:
    """Start `vjgan ARGS`, SIGKILL it after `seconds` (unless it ended first); its exit code, or None if killed."""
    process = subprocess.Popen(
        vjgan_command(*args), cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return process.returncode
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=timeout)
    return None


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed (non-zero) with exactly one `vjgan: error:` line that names every fragment
    (e.g. the file and the cause), and no traceback; returns that line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert TRACEBACK not in output, output
    errors = [line for line in output.splitlines() if line.startswith("vjgan: error:")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
