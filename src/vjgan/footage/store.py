"""The frame store: one genre's frames as uint8 `.npy` shards (one per source video) + `manifest.json`.

Reading memory-maps the shards, so opening a 100k-frame store costs a manifest read and a `stat` per
shard, and sampling touches only the frames drawn. Writing streams frames into a hidden `.part` file
whose `.npy` header is filled in at the end; a shard gets its final name only when complete, and the
manifest (replaced atomically) lists only finished shards. A run killed at any point thus leaves a
consistent store; leftovers (`.part` files, shards the manifest never got to list) are removed when
the store is next opened for writing. One writer at a time, by an advisory lock.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjgan.errors import StoreError

MANIFEST = "manifest.json"
FORMAT = "vjgan-frame-store"
VERSION = 1
LOCK = ".lock"
PART_SUFFIX = ".part"
NPY_HEADER_BYTES = 128  # fixed, so the frame count can be written after the frames
NPY_MAGIC = b"\x93NUMPY\x01\x00"  # .npy format version 1.0
SHARD_NAME = re.compile(r"\d{4,}-[A-Za-z0-9_.]*\.npy")


@dataclass(frozen=True)
class StoreSettings:
    """What every frame of a store shares; a store never mixes settings."""

    size_px: tuple[int, int]  # (height, width) of each frame
    fps: float | None  # frames per second the sources were resampled to; None: every source frame
    crop: str  # "center" or "full" (see geometry.py)

    def describe(self) -> str:
        fps = f"{self.fps:g}" if self.fps is not None else "0 (source rate)"
        return f"--size {self.size_px[0]} --fps {fps} --crop {self.crop}"


@dataclass(frozen=True)
class ShardInfo:
    """One source video's frames in the store (the manifest entry, plus where its frames start)."""

    file: str  # shard file name inside the store
    source: str  # the source's path relative to its genre folder
    fingerprint: str  # "sha256:…" of the source's content (see ingest.source_fingerprint)
    frames: int
    source_fps: float
    source_size_wh: tuple[int, int]  # as displayed (rotation applied)
    truncated: bool  # the source was damaged; these are the frames before the damage
    start: int = 0  # store index of this shard's first frame

    def manifest_entry(self) -> dict:
        return {
            "file": self.file, "source": self.source, "fingerprint": self.fingerprint, "frames": self.frames,
            "source_fps": self.source_fps, "source_size_wh": list(self.source_size_wh), "truncated": self.truncated,
        }  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    genre: str
    settings: StoreSettings
    shards: tuple[ShardInfo, ...]

    def to_json(self) -> str:
        document = {
            "format": FORMAT, "version": VERSION, "genre": self.genre, "size_px": list(self.settings.size_px),
            "fps": self.settings.fps, "crop": self.settings.crop,
            "shards": [shard.manifest_entry() for shard in self.shards],
        }  # fmt: skip
        return json.dumps(document, indent=1, ensure_ascii=False)


def read_manifest(store_dir: Path) -> Manifest:
    """The manifest of `store_dir`, validated; `StoreError` naming the file when it is not one."""
    path = store_dir / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"format is {document.get('format')!r}, not {FORMAT!r}")
        if document.get("version") != VERSION:
            raise ValueError(f"version {document.get('version')}; this vjgan reads version {VERSION}")
        settings = StoreSettings(tuple(document["size_px"]), document["fps"], document["crop"])
        shards, start = [], 0
        for entry in document["shards"]:
            shard = ShardInfo(
                entry["file"], entry["source"], entry["fingerprint"], int(entry["frames"]), float(entry["source_fps"]),
                tuple(entry["source_size_wh"]), bool(entry["truncated"]), start,
            )  # fmt: skip
            shards.append(shard)
            start += shard.frames
        return Manifest(str(document["genre"]), settings, tuple(shards))
    except FileNotFoundError:
        raise missing_store(store_dir) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise StoreError(f"{path}: not a readable vjgan frame store manifest ({error}); ingest into a new folder") from None


def missing_store(store_dir: Path) -> StoreError:
    if not store_dir.is_dir():
        return StoreError(f"{store_dir}: no such frame store; make one with `vjgan ingest FOOTAGE_DIR --out DATA_DIR`")
    genres = sorted(p.name for p in store_dir.iterdir() if (p / MANIFEST).is_file())
    if genres:
        return StoreError(f"{store_dir}: holds the genre stores {', '.join(genres)}; give one of them, e.g. {store_dir / genres[0]}")
    return StoreError(f"{store_dir}: not a frame store (no {MANIFEST}); make one with `vjgan ingest`")


class FrameStore:
    """A genre's frames, memory-mapped: `len(store)`, `sample(n, rng)`, `all_frames()`, `shards`."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.genre = manifest.genre
        self.size_px: tuple[int, int] = manifest.settings.size_px
        self.fps = manifest.settings.fps
        self.crop = manifest.settings.crop
        self.shards = manifest.shards
        self._starts = np.array([shard.start for shard in self.shards], dtype=np.int64)
        self._length = sum(shard.frames for shard in self.shards)
        self._maps: dict[int, np.ndarray] = {}

    @classmethod
    def open(cls, path: Path) -> "FrameStore":
        """Open `DATA_DIR/<genre>`; checks every shard is there and whole (by size), reads no pixels."""
        path = Path(path)
        store = cls(path, read_manifest(path))
        height, width = store.size_px
        for shard in store.shards:
            file = path / shard.file
            expected_bytes = NPY_HEADER_BYTES + shard.frames * height * width * 3
            try:
                actual_bytes = file.stat().st_size
            except FileNotFoundError:
                raise StoreError(f"{file}: shard listed in the manifest is missing; ingest into a new folder") from None
            if actual_bytes != expected_bytes:
                raise StoreError(f"{file}: shard is {actual_bytes} bytes, the manifest implies {expected_bytes}; it is damaged")
        if len(store) == 0:
            raise StoreError(f"{path}: the frame store is empty; ingest some footage into it first")
        return store

    def __len__(self) -> int:
        return self._length

    def shard_frames(self, index: int) -> np.ndarray:
        """Shard `index`'s frames, memory-mapped read-only: (frames, h, w, 3) uint8."""
        if index not in self._maps:
            file = self.path / self.shards[index].file
            try:
                frames = np.load(file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as error:
                raise StoreError(f"{file}: not a readable shard ({error})") from None
            if frames.dtype != np.uint8 or frames.shape != (self.shards[index].frames, *self.size_px, 3):
                raise StoreError(f"{file}: shard holds {frames.dtype} {frames.shape}, not the manifest's frames")
            self._maps[index] = frames
        return self._maps[index]

    def frames_at(self, indices: np.ndarray) -> np.ndarray:
        """Frames at store `indices` (any order, repeats allowed): (len(indices), h, w, 3) uint8."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"frame indices must lie in [0, {len(self)})")
        out = np.empty((len(indices), *self.size_px, 3), np.uint8)
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1
        for shard in np.unique(shard_of):
            chosen = np.flatnonzero(shard_of == shard)
            within = indices[chosen] - self._starts[shard]
            order = np.argsort(within, kind="stable")  # read each shard front to back
            out[chosen[order]] = self.shard_frames(int(shard))[within[order]]
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` frames drawn uniformly over the whole store: (n, h, w, 3) uint8.

        Distinct frames when the store has at least `n`, otherwise drawn with replacement.
        """
        indices = rng.choice(len(self), size=n, replace=n > len(self))
        return self.frames_at(indices)

    def all_frames(self) -> np.ndarray:
        """Every frame as one contiguous (N, h, w, 3) uint8 copy, in shard order (for moving to a device)."""
        out = np.empty((len(self), *self.size_px, 3), np.uint8)
        for index, shard in enumerate(self.shards):
            out[shard.start : shard.start + shard.frames] = self.shard_frames(index)
        return out


@contextlib.contextmanager
def writing(path: Path):
    """OS failures while writing the store (disk full, read-only, permissions) as one-line `StoreError`s."""
    try:
        yield
    except OSError as error:
        raise StoreError(f"{path}: cannot write the frame store ({error.strerror or error})") from None


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy (v1.0) header for uint8 `shape`, padded to NPY_HEADER_BYTES like numpy pads its own."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body_bytes = NPY_HEADER_BYTES - len(NPY_MAGIC) - 2
    if len(text) >= body_bytes:
        raise ValueError(f"shape {shape} does not fit a {NPY_HEADER_BYTES}-byte header")
    return NPY_MAGIC + struct.pack("<H", body_bytes) + (text.ljust(body_bytes - 1) + "\n").encode("latin1")


class ShardWriter:
    """Frames appended to `<name>.part` as they come; `commit()` fills in the header and renames it."""

    def __init__(self, path: Path, frame_shape: tuple[int, int, int]):
        self.path = path
        self.part_path = path.with_name(path.name + PART_SUFFIX)
        self.frame_shape = frame_shape
        self.frames = 0
        with writing(self.part_path):
            self._file = open(self.part_path, "wb", buffering=1 << 20)
            self._file.write(npy_header((0, *frame_shape)))

    def append(self, frame: np.ndarray) -> None:
        """One (h, w, 3) uint8 frame, C-contiguous."""
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.dtype} {frame.shape}, the shard holds uint8 {self.frame_shape}")
        with writing(self.part_path):
            self._file.write(np.ascontiguousarray(frame).data)
        self.frames += 1

    def commit(self) -> None:
        """Make the shard whole and durable under its final name."""
        with writing(self.part_path):
            self._file.seek(0)
            self._file.write(npy_header((self.frames, *self.frame_shape)))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.part_path, self.path)

    def discard(self) -> None:
        self._file.close()
        self.part_path.unlink(missing_ok=True)


class StoreWriter:
    """Adds whole shards to a genre's store. Open it before decoding: it refuses other settings at once.

    Use as a context manager; it holds the store's lock until closed.
    """

    def __init__(self, path: Path, genre: str, settings: StoreSettings):
        self.path = Path(path)
        self.genre = genre
        self.settings = settings
        manifest_exists = (self.path / MANIFEST).is_file()
        self.shards: list[ShardInfo] = []
        if manifest_exists:
            manifest = read_manifest(self.path)
            if manifest.settings != settings:
                raise StoreError(
                    f"{self.path}: this store was made with {manifest.settings.describe()}, not {settings.describe()}; "
                    "ingest with the store's settings or into a new --out folder"
                )
            self.shards = list(manifest.shards)
        with writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(f"{self.path}: another vjgan ingest is writing to this store; wait for it to finish") from None
        self.removed_leftovers = self._remove_leftovers()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock; a store that never got a shard leaves no folder behind.

        Unfinished files go first: an interrupt can land between a `.part` file's creation and the
        code that would discard it.
        """
        self._remove_leftovers()
        if not self.shards:
            (self.path / LOCK).unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                pass  # the user's own files are in it: leave it
        self._lock.close()

    @property
    def fingerprints(self) -> dict[str, str]:
        """fingerprint -> source already in the store."""
        return {shard.fingerprint: shard.source for shard in self.shards}

    def new_shard(self, source: str) -> ShardWriter:
        """A writer for the next shard, named `<number>-<source stem, ASCII>.npy`."""
        number = 1 + max((int(s.file.split("-", 1)[0]) for s in self.shards if SHARD_NAME.fullmatch(s.file)), default=0)
        stem = re.sub(r"[^A-Za-z0-9_.]+", "_", Path(source).stem).strip("_.")[:48] or "clip"
        height, width = self.settings.size_px
        return ShardWriter(self.path / f"{number:04d}-{stem}.npy", (height, width, 3))

    def commit(self, shard: ShardWriter, info: ShardInfo) -> None:
        """Finish `shard` and list it in the manifest (the manifest changes only after the file is whole)."""
        shard.commit()
        start = sum(s.frames for s in self.shards)
        self.shards.append(dataclasses.replace(info, file=shard.path.name, frames=shard.frames, start=start))
        manifest = Manifest(self.genre, self.settings, tuple(self.shards))
        temporary = self.path / (MANIFEST + PART_SUFFIX)
        with writing(temporary), open(temporary, "w", encoding="utf-8") as file:
            file.write(manifest.to_json())
            file.flush()
            os.fsync(file.fileno())
            os.replace(temporary, self.path / MANIFEST)

    def _remove_leftovers(self) -> list[str]:
        """Delete what an interrupted run left: `.part` files and shards the manifest does not list."""
        listed = {shard.file for shard in self.shards}
        removed = []
        for entry in self.path.iterdir():
            if entry.name.endswith(PART_SUFFIX) or (SHARD_NAME.fullmatch(entry.name) and entry.name not in listed):
                entry.unlink()
                removed.append(entry.name)
        return sorted(removed)
