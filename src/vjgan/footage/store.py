"""The frame store: one genre's frames as uint8 `.npy` shards (one per source video) + `manifest.json`.

Reading memory-maps the shards, so opening a 100k-frame store costs a manifest read and a `stat` per
shard, and sampling touches only the frames drawn. Writing streams frames into `<shard>.partial`
whose `.npy` header is filled in at the end; a shard gets its final name only when complete, and the
manifest (replaced atomically) lists only finished shards. A run killed at any point, or refused a
write by a full disk, thus leaves a consistent store; leftovers (`.partial` files, and `.part` ones of
older versions, shards the manifest never got to list) are removed when the store is next opened for
writing. One writer at a time, by an advisory lock taken before the manifest is read.

Source and genre names are whatever bytes the file system allows. The manifest is UTF-8 JSON, so a
name that is not valid UTF-8 (`caf\xe9.mp4` from an older system) is written twice: readable, with
the bad bytes as `\xe9`, under "source", and exactly, as hex of its bytes, under "source_bytes"
(likewise "genre_bytes"). Readers get back the `str` Python gave for the name (os.fsdecode's).

A store thinned by `--dedup` (see dedup.py) keeps, next to each shard, `<shard>.times.npy`: the
float32 presentation time of each kept frame, which is no longer `i / fps`. Without dedup, frames are
evenly spaced and nothing more is written, so such a store is byte for byte what it always was.
"""

import array
import contextlib
import dataclasses
import json
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjgan.console import printable
from vjgan.errors import StoreError
from vjgan.files import PARTIAL_SUFFIX, atomic_path, partial_path, publish, write_atomic, writing
from vjgan.footage.decode import FALLBACK_FRAME_SECONDS
from vjgan.locks import try_lock
from vjgan.sizes import format_size

MANIFEST = "manifest.json"
FORMAT = "vjgan-frame-store"
VERSION = 1
LOCK = ".lock"
OLD_PART_SUFFIX = ".part"  # what versions before issue 12 called a shard being written; removed as a leftover
NPY_HEADER_BYTES = 128  # fixed, so the frame count can be written after the frames
NPY_MAGIC = b"\x93NUMPY\x01\x00"  # .npy format version 1.0
SHARD_NAME = re.compile(r"\d{4,}-[A-Za-z0-9_.]*\.npy")  # times files (`<stem>.times.npy`) match it too
TIMES_SUFFIX = ".times.npy"
MAX_OPEN_SHARDS = 256  # descriptors `read_frames` keeps open (a store may have thousands of shards)
MAX_FRAMES_PER_READ = 512  # buffers in one vectored read (the OS takes at most IOV_MAX, 1024 on Linux)


@dataclass(frozen=True)
class StoreSettings:
    """What every frame of a store shares; a store never mixes settings."""

    size_px: tuple[int, int]  # (height, width) of each frame
    fps: float | None  # frames per second the sources were resampled to; None: every source frame
    crop: str  # "center" or "full" (see geometry.py)
    dedup: float = 0.0  # near-duplicate threshold the sources were thinned with (dedup.py); 0: every frame kept

    def describe(self) -> str:
        fps = f"{self.fps:g}" if self.fps is not None else "0 (source rate)"
        dedup = f" --dedup {self.dedup:g}" if self.dedup else ""
        return f"--size {format_size(self.size_px)} --fps {fps} --crop {self.crop}{dedup}"


def nominal_fps(store_fps: float | None, source_fps: float) -> float:
    """The rate frames of a shard without a times file are spaced at: the store's, else the source's
    (frames kept at the source rate), else FFmpeg's default, as decode.py times a file that says nothing."""
    return store_fps or source_fps or 1 / float(FALLBACK_FRAME_SECONDS)


def name_fields(key: str, name: str) -> dict[str, str]:
    """`{key: name}` for the manifest, plus `{key_bytes: hex}` when the name's bytes are not UTF-8."""
    raw = name.encode("utf-8", "surrogateescape")  # the name's bytes as the file system holds them
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return {key: printable(name), f"{key}_bytes": raw.hex()}
    return {key: name}


def read_name(entry: dict, key: str) -> str:
    """The name `name_fields` wrote: its exact bytes, when it kept them, as os.fsdecode gives them."""
    if f"{key}_bytes" in entry:
        return bytes.fromhex(entry[f"{key}_bytes"]).decode("utf-8", "surrogateescape")
    return str(entry[key])


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
    frames_decoded: int | None = None  # frames before dedup dropped some (None: no dedup, all kept)
    times_file: str | None = None  # float32 (frames,) presentation seconds of each frame (dedup stores only)

    def manifest_entry(self) -> dict:
        entry = {
            "file": self.file,
            **name_fields("source", self.source),
            "fingerprint": self.fingerprint,
            "frames": self.frames,
            "source_fps": self.source_fps,
            "source_size_wh": list(self.source_size_wh),
            "truncated": self.truncated,
        }
        if self.frames_decoded is not None:
            entry["frames_decoded"] = self.frames_decoded
        if self.times_file is not None:
            entry["times"] = self.times_file
        return entry


@dataclass(frozen=True)
class Manifest:
    genre: str
    settings: StoreSettings
    shards: tuple[ShardInfo, ...]

    def to_json(self) -> str:
        document = {
            "format": FORMAT,
            "version": VERSION,
            **name_fields("genre", self.genre),
            "size_px": list(self.settings.size_px),
            "fps": self.settings.fps,
            "crop": self.settings.crop,
            **({"dedup": self.settings.dedup} if self.settings.dedup else {}),
            "shards": [shard.manifest_entry() for shard in self.shards],
        }
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
        settings = StoreSettings(tuple(document["size_px"]), document["fps"], document["crop"], float(document.get("dedup", 0.0)))
        shards, start = [], 0
        for entry in document["shards"]:
            shard = ShardInfo(
                entry["file"],
                read_name(entry, "source"),
                entry["fingerprint"],
                int(entry["frames"]),
                float(entry["source_fps"]),
                tuple(entry["source_size_wh"]),
                bool(entry["truncated"]),
                start,
                entry.get("frames_decoded"),
                entry.get("times"),
            )
            shards.append(shard)
            start += shard.frames
        return Manifest(read_name(document, "genre"), settings, tuple(shards))
    except FileNotFoundError:
        raise missing_store(store_dir) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise StoreError(f"{path}: not a readable vjgan frame store manifest ({error}); ingest into a new folder") from None


def missing_store(store_dir: Path) -> StoreError:
    if not store_dir.is_dir():
        return StoreError(f"{store_dir}: no such frame store; make one with `vjgan ingest FOOTAGE_DIR --out DATA_DIR`")
    genres = sorted(p.name for p in store_dir.iterdir() if (p / MANIFEST).is_file())
    if genres:
        return StoreError(
            f"{store_dir}: holds the genre stores {', '.join(genres)}; give one of them, e.g. {store_dir / genres[0]}"
        )
    return StoreError(f"{store_dir}: not a frame store (no {MANIFEST}); make one with `vjgan ingest`")


class FrameStore:
    """A genre's frames, memory-mapped: `len(store)`, `sample(n, rng)`, `all_frames()`, `shards`,
    and where each frame came from: `frame_sources()`, `frame_times_seconds()`."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.genre = manifest.genre
        self.size_px: tuple[int, int] = manifest.settings.size_px
        self.fps = manifest.settings.fps
        self.crop = manifest.settings.crop
        self.dedup = manifest.settings.dedup
        self.shards = manifest.shards
        self._starts = np.array([shard.start for shard in self.shards], dtype=np.int64)
        self._length = sum(shard.frames for shard in self.shards)
        self._maps: dict[int, np.ndarray] = {}
        self._descriptors: dict[int, int] = {}  # shard -> descriptor, for `read_frames`
        self._descriptors_lock = threading.Lock()

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
            if shard.times_file is not None and not (path / shard.times_file).is_file():
                raise StoreError(
                    f"{path / shard.times_file}: frame times listed in the manifest are missing; ingest into a new folder"
                )
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

    def frame_sources(self) -> np.ndarray:
        """(N,) int64: the shard, i.e. the source video, each frame comes from (an index into `shards`)."""
        return np.repeat(np.arange(len(self.shards), dtype=np.int64), [shard.frames for shard in self.shards])

    def frame_times_seconds(self) -> np.ndarray:
        """(N,) float64: each frame's presentation time in its source, seconds from the source's first frame.

        Exact on the store's clock (`--fps`); at the source rate (`--fps 0`) frame i of a source is put
        at i / its nominal fps, which a variable-rate source only approximates.
        """
        return np.concatenate([self.shard_times_seconds(index) for index in range(len(self.shards))])

    def shard_times_seconds(self, index: int) -> np.ndarray:
        """(frames,) float64 presentation seconds of shard `index`'s frames (see `frame_times_seconds`)."""
        shard = self.shards[index]
        if shard.times_file is None:  # every frame kept: evenly spaced
            return np.arange(shard.frames) / nominal_fps(self.fps, shard.source_fps)
        file = self.path / shard.times_file
        try:
            times = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise StoreError(f"{file}: not a readable times file ({error})") from None
        if times.dtype != np.float32 or times.shape != (shard.frames,):
            raise StoreError(f"{file}: holds {times.dtype} {times.shape}, not the times of the shard's {shard.frames} frames")
        return times.astype(np.float64)

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

    def read_frames(self, indices: np.ndarray, out: np.ndarray) -> None:
        """Frames at store `indices` into `out` ((len(indices), h, w, 3) uint8), by positioned reads.

        What streamed training reads with: unlike `frames_at`, nothing is mapped, so however large the
        store, the process holds only `out` (the pages read sit in the OS's cache, which it reclaims).
        Frames of a shard that follow each other on disk are read in one call. Safe from several threads.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if not indices.size:
            return
        if indices.min() < 0 or indices.max() >= len(self):
            raise IndexError(f"frame indices must lie in [0, {len(self)})")
        if not hasattr(os, "preadv"):  # Windows: no positioned reads; the mapped shards serve
            out[:] = self.frames_at(indices)
            return
        frame_bytes = out[0].nbytes
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1
        order = np.lexsort((indices, shard_of))  # by shard, then front to back within it
        breaks = (np.diff(indices[order]) != 1) | (np.diff(shard_of[order]) != 0)
        for run in np.split(order, np.flatnonzero(breaks) + 1):  # runs of consecutive frames of one shard
            for part in np.array_split(run, -(-len(run) // MAX_FRAMES_PER_READ)):
                self._read_run(int(shard_of[part[0]]), int(indices[part[0]]), out, part, frame_bytes)

    def _read_run(self, shard: int, first: int, out: np.ndarray, positions: np.ndarray, frame_bytes: int) -> None:
        """Consecutive frames of `shard` from store index `first` into `out[positions]`, in one vectored read."""
        file = self.path / self.shards[shard].file
        offset = NPY_HEADER_BYTES + (first - int(self._starts[shard])) * frame_bytes
        buffers = [memoryview(out[position]).cast("B") for position in positions]
        try:
            with self._opened(shard) as descriptor:
                self._read_into(descriptor, buffers, offset)
        except OSError as error:
            raise StoreError(f"{file}: cannot read frames ({error.strerror or error}); the store may be damaged") from None

    @staticmethod
    def _read_into(descriptor: int, buffers: list[memoryview], offset: int) -> None:
        while buffers:  # a vectored read may return short (a signal, a huge request): go on where it stopped
            got = os.preadv(descriptor, buffers, offset)
            if got == 0:
                raise OSError(f"the file ends {len(buffers)} frames early")
            offset += got
            while buffers and got >= len(buffers[0]):
                got -= len(buffers.pop(0))
            if got:
                buffers[0] = buffers[0][got:]

    @contextlib.contextmanager
    def _opened(self, shard: int):
        """A read-only descriptor of shard `shard`: kept open for later reads while fewer than
        MAX_OPEN_SHARDS are (never closed under another thread's read), else opened for this read alone."""
        with self._descriptors_lock:
            descriptor = self._descriptors.get(shard)
            if descriptor is None and len(self._descriptors) < MAX_OPEN_SHARDS:
                descriptor = self._descriptors[shard] = os.open(self.path / self.shards[shard].file, os.O_RDONLY)
        if descriptor is not None:
            yield descriptor
            return
        descriptor = os.open(self.path / self.shards[shard].file, os.O_RDONLY)
        try:
            yield descriptor
        finally:
            os.close(descriptor)

    def close(self) -> None:
        """Close the descriptors `read_frames` opened (mapped shards are released when the store is)."""
        with self._descriptors_lock:
            for descriptor in self._descriptors.values():
                os.close(descriptor)
            self._descriptors.clear()


def open_stores(paths) -> tuple[FrameStore, ...]:
    """Several stores trained on as one pool (`vjgan train DATA/a DATA/b`): they must share a frame size."""
    stores = tuple(FrameStore.open(Path(path)) for path in paths)
    first_h, first_w = stores[0].size_px
    for store in stores[1:]:
        if store.size_px != stores[0].size_px:
            height, width = store.size_px
            raise StoreError(
                f"{store.path}: frames are {width}x{height} px but {stores[0].path} holds {first_w}x{first_h} px; "
                "stores trained as one must share a size (ingest again with --size)"
            )
    return stores


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy (v1.0) header for uint8 `shape`, padded to NPY_HEADER_BYTES like numpy pads its own."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body_bytes = NPY_HEADER_BYTES - len(NPY_MAGIC) - 2
    if len(text) >= body_bytes:
        raise ValueError(f"shape {shape} does not fit a {NPY_HEADER_BYTES}-byte header")
    return NPY_MAGIC + struct.pack("<H", body_bytes) + (text.ljust(body_bytes - 1) + "\n").encode("latin1")


SHARD_WHAT = "a frame store shard"


def times_path(shard_path: Path) -> Path:
    """Where a dedup store keeps the frame times of the shard at `shard_path`: `<stem>.times.npy`."""
    return shard_path.with_name(shard_path.name.removesuffix(".npy") + TIMES_SUFFIX)


class ShardWriter:
    """Frames appended to `<name>.partial` as they come; `commit()` fills in the header and renames it.

    `timed`: each frame comes with its presentation time, written at commit to `times_path`
    (4 bytes a frame are held until then, never the frames). A write the disk refuses is an
    `OutputError` naming the shard.
    """

    def __init__(self, path: Path, frame_shape: tuple[int, int, int], timed: bool = False):
        self.path = path
        self.partial_path = partial_path(path)
        self.times_path = times_path(path) if timed else None
        self.frame_shape = frame_shape
        self.frames = 0
        self._times_seconds = array.array("f") if timed else None
        with writing(self.path, SHARD_WHAT):
            self._file = open(self.partial_path, "wb", buffering=1 << 20)
            self._file.write(npy_header((0, *frame_shape)))

    def append(self, frame: np.ndarray, time_seconds: float | None = None) -> None:
        """One (h, w, 3) uint8 frame, C-contiguous, and (for a timed shard) its presentation time."""
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.dtype} {frame.shape}, the shard holds uint8 {self.frame_shape}")
        if self._times_seconds is not None:
            if time_seconds is None:
                raise ValueError(f"{self.path.name} records each frame's time; give time_seconds")
            self._times_seconds.append(time_seconds)
        with writing(self.path, SHARD_WHAT):
            self._file.write(np.ascontiguousarray(frame).data)
        self.frames += 1

    def commit(self) -> None:
        """Make the shard (and its times, first) whole and durable under their final names."""
        if self.times_path is not None:
            with atomic_path(self.times_path, "the frame times") as partial, open(partial, "wb") as file:
                np.save(file, np.frombuffer(self._times_seconds, dtype=np.float32), allow_pickle=False)
        with writing(self.path, SHARD_WHAT):
            self._file.seek(0)
            self._file.write(npy_header((self.frames, *self.frame_shape)))
            self._file.close()
            publish(self.partial_path, self.path)

    def discard(self) -> None:
        """Drop the unfinished shard (after a failure: closing may fail too, on the same full disk)."""
        with contextlib.suppress(OSError):
            self._file.close()
        self.partial_path.unlink(missing_ok=True)


class StoreWriter:
    """Adds whole shards to a genre's store. Open it before decoding: it refuses other settings at once.

    Use as a context manager; it holds the store's lock until closed. Its `shards` are always what
    the manifest on disk lists: a shard joins them only once the manifest naming it is written.
    """

    def __init__(self, path: Path, genre: str, settings: StoreSettings):
        self.path = Path(path)
        self.genre = genre
        self.settings = settings
        with writing(self.path, "the frame store"):
            self.path.mkdir(parents=True, exist_ok=True)
            lock = try_lock(self.path / LOCK)
        if lock is None:
            raise StoreError(f"{self.path}: another vjgan ingest is writing to this store; wait for it to finish")
        self._lock = lock
        try:  # read under the lock: another writer's manifest is whole by now, and stays as read
            self.shards: list[ShardInfo] = self._listed_shards()
            with writing(self.path, "the frame store"):
                self.removed_leftovers = self._remove_leftovers()
        except BaseException:
            self._lock.release()
            raise

    def _listed_shards(self) -> list[ShardInfo]:
        """The shards the manifest lists (none for a new store); refuses a store made with other settings."""
        if not (self.path / MANIFEST).is_file():
            return []
        manifest = read_manifest(self.path)
        if manifest.settings != self.settings:
            raise StoreError(
                f"{self.path}: this store was made with {manifest.settings.describe()}, not {self.settings.describe()}; "
                "ingest with the store's settings or into a new --out folder"
            )
        return list(manifest.shards)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock; a store that never got a shard leaves no folder behind.

        Unfinished files go first: an interrupt can land between a `.partial` file's creation and the
        code that would discard it, and a refused manifest leaves its shard unlisted. Cleaning is
        best effort (the next writer cleans again), so it never hides the error that brought us here.
        """
        with contextlib.suppress(OSError):
            self._remove_leftovers()
        if not self.shards:  # the lock file goes while held, so no other writer is left holding a deleted one
            with contextlib.suppress(OSError):  # Windows refuses: there the lock file goes on release
                (self.path / LOCK).unlink(missing_ok=True)
        self._lock.release()
        if not self.shards:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # fails, leaving it, when the user's own files are in it

    @property
    def fingerprints(self) -> dict[str, str]:
        """fingerprint -> source already in the store."""
        return {shard.fingerprint: shard.source for shard in self.shards}

    def new_shard(self, source: str) -> ShardWriter:
        """A writer for the next shard (see `next_shard_path`)."""
        height, width = self.settings.size_px
        return ShardWriter(self.next_shard_path(source), (height, width, 3), timed=self.settings.dedup > 0)

    def next_shard_path(self, source: str) -> Path:
        """Where the next shard of `source` goes: `<number>-<source stem, ASCII>.npy`, numbered after the listed ones."""
        number = 1 + max((int(s.file.split("-", 1)[0]) for s in self.shards if SHARD_NAME.fullmatch(s.file)), default=0)
        stem = re.sub(r"[^A-Za-z0-9_.]+", "_", Path(source).stem).strip("_.")[:48] or "clip"
        return self.path / f"{number:04d}-{stem}.npy"

    def commit(self, shard: ShardWriter, info: ShardInfo) -> None:
        """Finish `shard` and list it in the manifest (the manifest changes only after the file is whole)."""
        shard.commit()
        start = sum(s.frames for s in self.shards)
        times_file = shard.times_path.name if shard.times_path is not None else None
        listed = [
            *self.shards,
            dataclasses.replace(info, file=shard.path.name, frames=shard.frames, start=start, times_file=times_file),
        ]
        write_atomic(
            self.path / MANIFEST, Manifest(self.genre, self.settings, tuple(listed)).to_json(), "the frame store manifest"
        )
        self.shards = listed

    def _remove_leftovers(self) -> list[str]:
        """Delete what an interrupted run left: unfinished files, shards and times files the manifest does not list."""
        listed = {shard.file for shard in self.shards} | {shard.times_file for shard in self.shards}
        removed = []
        for entry in self.path.iterdir():
            unfinished = entry.name.endswith((PARTIAL_SUFFIX, OLD_PART_SUFFIX))
            if unfinished or (SHARD_NAME.fullmatch(entry.name) and entry.name not in listed):
                entry.unlink()
                removed.append(entry.name)
        return sorted(removed)
