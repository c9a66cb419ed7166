"""Real faults for tests: a `vjgan` command in a child process under a file-size limit (a real EFBIG from
the kernel, as a full disk gives ENOSPC), or killed with SIGKILL at a chosen instant. Nothing is patched."""

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
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


def run_vjgan(
    *args, fsize_limit_bytes: int | None = None, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Run `vjgan ARGS` to completion; with `fsize_limit_bytes` no file it writes may grow past that size
    (RLIMIT_FSIZE: the kernel refuses the write with EFBIG, as a full disk refuses it with ENOSPC)."""

    def limit():
        if fsize_limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit_bytes, fsize_limit_bytes))

    return subprocess.run(
        vjgan_command(*args),
        cwd=cwd,
        env=child_env(),
        preexec_fn=limit,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


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


def fork_vjgan(*args, fsize_limit_bytes: int | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """`run_vjgan` in a child forked from this process, which has vjgan and torch imported already: the
    same real process, file-size limit and exit code, without 2-3 s of interpreter and torch start-up."""
    result = fork_call(cli_call(*args), fsize_limit_bytes, timeout)
    result.args = ["vjgan", *map(os.fsdecode, args)]
    return result


def cli_call(*args):
    """A function running `vjgan ARGS` (`vjgan.cli.main`, returning its exit code), for a forked child. The
    command's modules are imported here, before the fork, so that no child spends seconds importing them."""
    from vjgan.cli import build_parser, main

    argv = [os.fsdecode(arg) for arg in args]
    build_parser(argv)
    return lambda: main(argv)


def fork_call(function, fsize_limit_bytes: int | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """`function()` in a forked child (under RLIMIT_FSIZE with `fsize_limit_bytes`), its return value the exit
    code; its output (Python's and its own children's, e.g. FFmpeg's) comes back as `stdout`."""
    with tempfile.TemporaryFile() as output:
        code = wait_child(fork_child(function, output, fsize_limit_bytes), timeout)
        output.seek(0)
        text = output.read().decode(errors="replace")
    return subprocess.CompletedProcess([], code, text, "")


def fork_and_kill(function, seconds: float, start_when=None, timeout: float = 240) -> int | None:
    """Run `function()` in a forked child and SIGKILL it after `seconds` unless it ended first; the child's
    exit code, or None if it was killed. Its output is dropped. With `start_when`, the `seconds` count from
    the moment `start_when()` is first true (polled every 2 ms), e.g. when the child's output file appears."""
    with open(os.devnull, "wb") as output:
        pid = fork_child(function, output, None)
    deadline = None if start_when is not None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        if deadline is None and start_when():
            deadline = time.monotonic() + seconds
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    code = wait_child(pid, timeout)
    return None if code == -signal.SIGKILL else code


def fork_child(function, output, fsize_limit_bytes: int | None) -> int:
    """Fork; the child sends stdout and stderr to `output`, sets the size limit, runs `function()` and exits with
    its return value (a traceback and 70 if it raised); returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        sys.stdout = sys.stderr = open(1, "w", closefd=False, errors="backslashreplace")
        if fsize_limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit_bytes, fsize_limit_bytes))
        code = function() or 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)


def wait_child(pid: int, timeout: float) -> int:
    """The forked child's exit code (negative: the signal that killed it); SIGKILLed after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (ended := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        time.sleep(0.002)
    return os.waitstatus_to_exitcode(ended[1])
