"""Locks between processes on one machine, on every system vjgan runs on.

Built on `filelock`: `flock` on Linux and macOS, `LockFileEx` on Windows. The lock is held through an
open file, so a process that dies in any way (even killed) frees it at once: nothing stale to clean up.
"""

from pathlib import Path

from filelock import FileLock, Timeout


def try_lock(path: Path) -> FileLock | None:
    """The lock file `path` taken by this process, or None when another holder has it (never waits).

    Release it with `.release()`. A lock file that cannot be created raises `OSError`.
    """
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def wait_lock(path: Path) -> FileLock:
    """The lock file `path` taken by this process, once any other holder has released it.

    Release it with `.release()`. A lock file that cannot be created or opened raises `OSError`.
    """
    lock = FileLock(str(path))
    lock.acquire()
    return lock
