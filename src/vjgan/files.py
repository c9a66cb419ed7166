"""Files that must never be half-written, and the one line a user reads when the disk refuses a write.

Whatever vjgan must never leave half-written (manifests, configs, checkpoints, indexes, pictures) is
written under a temporary name beside its final one (`<name>.partial`), flushed to the disk, renamed
over the final name, and the folder flushed too: a reader, a crash or a full disk finds the old file or
the new one, never a mix. A failed write removes its temporary file and raises `OutputError` naming the
final file and the cause ("No space left on device", "File too large"), never a traceback.
"""

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from safetensors import SafetensorError

from vjgan.errors import OutputError

PARTIAL_SUFFIX = ".partial"  # a file being written; any left behind is a crash's leftover, safe to delete

# safetensors (Rust) reports I/O failures as text only: "... I/O error: File too large (os error 27)"
# (or, in older releases, "IoError(Os { code: 28, ... })"); the errno gives the reason in our words.
_SAFETENSORS_ERRNO = re.compile(r"os error (\d+)|code: (\d+)")


def partial_path(path: Path) -> Path:
    """Where `path` is written until it is whole."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def is_write_failure(error: BaseException) -> bool:
    """Whether `error` is the environment refusing a write (disk full, size limit, permissions, I/O)."""
    return isinstance(error, (OSError, SafetensorError))


def failure_reason(error: BaseException) -> str:
    """The cause of a write failure in a few words, e.g. "No space left on device"."""
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    match = _SAFETENSORS_ERRNO.search(str(error))
    if match:
        return os.strerror(int(match[1] or match[2]))
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def write_error(path: Path, what: str, error: BaseException) -> OutputError:
    """The one-line error for a failed write of `what` at `path`."""
    return OutputError(f"{path}: cannot write {what} ({failure_reason(error)}); what was finished before is kept")


@contextlib.contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    """Turn a write failure inside the block into `OutputError` naming `path`."""
    try:
        yield
    except (OSError, SafetensorError) as error:
        raise write_error(path, what, error) from None


@contextlib.contextmanager
def atomic_path(path: Path, what: str) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; on leaving the block it becomes `path`.

    Write the whole file to the yielded path (by any library: PIL, safetensors, soundfile, ...); it is
    then flushed, renamed over `path` and the folder flushed. On any failure the temporary file is
    removed and `path` keeps its old content; a write failure is raised as `OutputError`.
    """
    path = Path(path)
    partial = partial_path(path)
    try:
        yield partial
        publish(partial, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if is_write_failure(error):
            raise write_error(path, what, error) from None
        raise


def publish(partial: Path, path: Path) -> None:
    """Make the whole file `partial` the file `path`: flushed, renamed over it, the folder flushed (the end of
    `atomic_path`, for writers whose temporary file outlives a `with` block, such as a clip's encoder)."""
    fsync_path(partial)
    os.replace(partial, path)
    fsync_path(Path(path).parent)


def write_atomic(path: Path, content: bytes | str, what: str) -> None:
    """Replace `path` with `content` (text is written as UTF-8) in one atomic step.

    Text holding a name whose bytes are not UTF-8 (a folder called `caf\\xe9` on an older drive) cannot be
    written as UTF-8: that is an `OutputError` quoting the name, not a traceback."""
    try:
        data = content.encode("utf-8") if isinstance(content, str) else content
    except UnicodeEncodeError as error:
        from vjgan.console import printable  # (rich stays off the start-up path)

        around = printable(error.object[max(0, error.start - 40) : error.end + 40])
        raise OutputError(
            f"{path}: cannot write {what}: it would hold a name that is not valid UTF-8 (...{around}...); "
            "rename that folder or file"
        ) from None
    with atomic_path(path, what) as partial, open(partial, "wb") as file:
        file.write(data)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's content to the disk (a folder: so a rename in it survives power loss).

    Windows opens no folder as a file (NTFS journals the rename itself) and flushes only a file opened for
    writing; POSIX opens a folder read-only."""
    is_folder = Path(path).is_dir()
    if is_folder and os.name == "nt":
        return
    descriptor = os.open(path, os.O_RDONLY if is_folder else os.O_RDWR)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if not is_folder:  # some filesystems cannot fsync a folder; a file must be flushed
            raise error
    finally:
        os.close(descriptor)


# What Windows refuses in a file or folder name (vjgan's names must work where VJs work): these
# characters, control characters, a trailing dot or space, and device names, with any extension.
_FORBIDDEN_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f]+')
_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in [*"0123456789", "\u00b9", "\u00b2", "\u00b3"]]
)
PORTABLE_NAME_CHARS = 100  # well inside every system's 255, leaving room for vjgan's suffixes


def portable_name(text: str, fallback: str = "unnamed") -> str:
    """`text` as a file or folder name every system accepts (Windows, macOS, Linux); a legal name is kept.

    Forbidden characters become `_`, trailing dots and spaces go, a device name (`CON`, `nul.txt`,
    `COM1`) gets a `_` in front, and an empty result becomes `fallback`. Names that differ only in
    case still collide on Windows and macOS: compare `portable_name(a).casefold()` to find them.
    """
    name = _FORBIDDEN_CHARACTERS.sub("_", text)[:PORTABLE_NAME_CHARS].rstrip(". ")
    if name.split(".", 1)[0].rstrip(" ").upper() in _DEVICE_NAMES:
        name = "_" + name
    return name or fallback
