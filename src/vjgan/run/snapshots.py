"""The run's snapshot store: the fixed noise bank rendered as training goes, the progress video's source.

`snapshots/frames.u8` is one raw uint8 array (S, bank_size, H, W, 3), grown by one row per snapshot;
`snapshots/index.json` says how many rows are complete and at how many images seen each was taken.
The index is the truth: it is replaced atomically after a row is written, so a process killed in the
middle of an append leaves at most some bytes past the last indexed row, which are overwritten next
time. No image file per snapshot and no plotting in the training loop: appending is one write.

Damage is repaired when training resumes (`open_for_writing` with the checkpoint's state): an index
listing rows that `frames.u8` does not hold whole is cut to the whole rows, and a lost or unreadable
index is rebuilt from the rows the checkpoint records (every checkpoint stores the index's
`images_seen` list, see checkpoint.py); without that record the frames are kept aside as
`frames.u8.damaged` and the snapshots start again. Each repair is said in one line.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from vjgan.console import console
from vjgan.errors import RunError
from vjgan.files import atomic_path, write_atomic, writing

SNAPSHOT_FORMAT = "vjgan-snapshots"
SNAPSHOT_VERSION = 1
FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"


def snapshots_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "snapshots"


def snapshot_index_path(run_dir: Path) -> Path:
    """The index: what changes when a snapshot is taken (what clips made from the snapshots are newer than)."""
    return snapshots_dir(run_dir) / INDEX_FILE


class SnapshotStore:
    """Rows of `bank_size` frames of `size_px` (height, width), one row per snapshot."""

    def __init__(self, folder: Path, bank_size: int, size_px: tuple[int, int], images_seen: list[int]):
        self.folder = folder
        self.bank_size = bank_size
        self.size_px = size_px
        self.images_seen = images_seen

    @classmethod
    def open(cls, run_dir: Path) -> "SnapshotStore":
        """The snapshots of an existing run (for rendering the training-process video)."""
        folder, index_path = snapshots_dir(run_dir), snapshot_index_path(run_dir)
        if not index_path.is_file():
            raise RunError(f"{run_dir}: no snapshots (no {index_path}); train the run first")
        try:
            index = json.loads(index_path.read_text())
            if index.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"format is {index.get('format')!r}")
            return cls(folder, int(index["bank_size"]), tuple(index["size_px"]), [int(n) for n in index["images_seen"]])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"{index_path}: not a vjgan snapshot index ({error})") from None

    @classmethod
    def open_for_writing(
        cls,
        run_dir: Path,
        bank_size: int,
        size_px: tuple[int, int],
        images_seen: int | None = None,
        recorded_images_seen: list[int] | None = None,
    ) -> "SnapshotStore":
        """The run's store, created empty if it does not exist; refuses one of another bank or size.

        With `images_seen` (resuming: the checkpoint's images, -1 for a new run) snapshots after it are
        forgotten and damage is repaired; `recorded_images_seen` is the checkpoint's copy of the index.
        """
        folder, index_path = snapshots_dir(run_dir), snapshot_index_path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if images_seen is None or index_path.exists():
            try:
                store = cls.open(run_dir) if index_path.exists() else cls(folder, bank_size, tuple(size_px), [])
            except RunError as error:
                if images_seen is None:
                    raise
                store = cls._rebuilt(folder, bank_size, size_px, images_seen, recorded_images_seen, str(error))
        else:
            store = cls._rebuilt(folder, bank_size, size_px, images_seen, recorded_images_seen, f"{index_path}: missing")
        if (store.bank_size, store.size_px) != (bank_size, tuple(size_px)):
            raise RunError(
                f"{folder}: snapshots of {store.bank_size} frames of {store.size_px} px, but the run now makes "
                f"{bank_size} of {tuple(size_px)} px; use another --run directory or --force to start over"
            )
        if images_seen is not None:
            store._cut_to_whole_rows()
            store.images_seen = [n for n in store.images_seen if n <= images_seen]
        store._write_index()
        return store

    @classmethod
    def _rebuilt(cls, folder: Path, bank_size: int, size_px, images_seen: int, recorded: list[int] | None, problem: str):
        """A store for an index that is missing or unreadable, from the checkpoint's record of it."""
        frames_path = folder / FRAMES_FILE
        if images_seen < 0 or not frames_path.exists():  # a new run, or nothing to index: start empty
            return cls(folder, bank_size, tuple(size_px), [])
        if recorded is not None:
            console.print(
                f"{problem}; snapshot index rebuilt from the checkpoint ({len(recorded)} snapshots)", markup=False, soft_wrap=True
            )
            return cls(folder, bank_size, tuple(size_px), list(recorded))
        aside = frames_path.with_name(FRAMES_FILE + ".damaged")
        os.replace(frames_path, aside)
        console.print(
            f"{problem}; the checkpoint records no snapshots to rebuild it from: "
            f"frames kept aside as {aside}, snapshots start again",
            markup=False,
            soft_wrap=True,
        )
        return cls(folder, bank_size, tuple(size_px), [])

    def _cut_to_whole_rows(self) -> None:
        """Forget indexed rows that frames.u8 does not hold whole (the file was cut short)."""
        path = self.folder / FRAMES_FILE
        whole_rows = path.stat().st_size // self.row_bytes if path.exists() else 0
        if whole_rows < len(self):
            console.print(
                f"{path}: holds {whole_rows} whole snapshots, its index {len(self)}; the index is cut to {whole_rows}",
                markup=False,
                soft_wrap=True,
            )
            self.images_seen = self.images_seen[:whole_rows]

    def __len__(self) -> int:
        return len(self.images_seen)

    @property
    def row_bytes(self) -> int:
        height, width = self.size_px
        return self.bank_size * height * width * 3

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Snapshots [start, stop) as (S, bank_size, H, W, 3) uint8."""
        start, stop, _ = slice(start, stop).indices(len(self))
        path = self.folder / FRAMES_FILE
        if len(self) and (not path.is_file() or path.stat().st_size < len(self) * self.row_bytes):
            raise RunError(f"{path}: shorter than its index says ({len(self)} snapshots); the run's snapshots are damaged")
        if stop <= start:
            return np.empty((0, self.bank_size, *self.size_px, 3), np.uint8)
        shape = (len(self), self.bank_size, *self.size_px, 3)
        rows = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
        return np.array(rows[start:stop])

    def append(self, images_seen: int, frames: np.ndarray) -> None:
        """Add one snapshot: `frames` (bank_size, H, W, 3) uint8 taken after `images_seen` images."""
        expected = (self.bank_size, *self.size_px, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(f"snapshot frames {frames.shape} {frames.dtype}, expected {expected} uint8")
        path = self.folder / FRAMES_FILE
        with writing(path, "snapshot frames"), open(path, "r+b" if path.exists() else "wb") as file:
            file.seek(len(self) * self.row_bytes)
            file.write(np.ascontiguousarray(frames).tobytes())
            file.truncate()
        self.images_seen.append(int(images_seen))
        self._write_index()

    def _write_index(self) -> None:
        index = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "bank_size": self.bank_size,
            "size_px": list(self.size_px),
            "images_seen": self.images_seen,
        }
        write_atomic(self.folder / INDEX_FILE, json.dumps(index), "the snapshot index")


def indexed_images_seen(run_dir: Path) -> list[int] | None:
    """Images seen at each indexed snapshot of a run (None when it has no readable index): what a
    checkpoint records so the index can be rebuilt."""
    try:
        return SnapshotStore.open(run_dir).images_seen
    except RunError:
        return None


def grid(frames: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> one (rows * h, cols * w, 3) image, as square as n allows, black where empty."""
    n, height, width, _ = frames.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    padded = np.zeros((rows * cols, height, width, 3), np.uint8)
    padded[:n] = frames
    tiles = padded.reshape(rows, cols, height, width, 3)
    return tiles.transpose(0, 2, 1, 3, 4).reshape(rows * height, cols * width, 3)


def write_preview(path: Path, frames: np.ndarray) -> None:
    """A PNG grid of one snapshot (bank_size, H, W, 3), replaced atomically so viewers never see half a file."""
    with atomic_path(path, "the preview") as partial:
        Image.fromarray(grid(frames)).save(partial, format="PNG")
