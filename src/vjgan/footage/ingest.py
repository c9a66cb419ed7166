"""Genre folders of videos in, one frame store per genre out: the dataset tool.

Each source becomes one shard, decoded, resampled and fitted on the way in, written straight to the
store. A file that cannot be used is a `Problem` (one line naming it and the reason), never the end
of the run; a file cut short keeps its frames. Re-running over the same folder skips sources already
in the store by content fingerprint, so an interrupted or extended ingest just runs again.
"""

import hashlib
import math
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import av

from vjgan.console import printable
from vjgan.errors import FootageError, VjganError
from vjgan.files import portable_name
from vjgan.footage.decode import check_source, open_video, unreadable
from vjgan.footage.dedup import NearDuplicateFilter
from vjgan.footage.geometry import CROP_MODES, size_hw
from vjgan.footage.store import ShardInfo, StoreSettings, StoreWriter, nominal_fps
from vjgan.interrupts import StopSignals
from vjgan.sizes import format_size

VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .qt .mkv .webm .avi .wmv .asf .flv .f4v .mpg .mpeg .m2v .ts .m2ts .mts .vob .ogv .3gp .mxf "
    ".dv .gif .y4m .nut".split()
)
STILL_SUFFIXES = frozenset(".png .jpg .jpeg .webp .bmp .tif .tiff .heic .avif".split())  # refused with a reason
FINGERPRINT_CHUNK_BYTES = 1 << 20  # bytes read at each of the start, middle and end of a source
REPORT_EVERY_FRAMES = 16  # frames between listener.frames_written calls (a progress bar redraw each)


@dataclass(frozen=True)
class IngestConfig:
    """How sources become stored frames; a store keeps these for good (see StoreSettings)."""

    size_px: tuple[int, int] = (96, 96)  # (height, width) of the frames, pixels; an int N means N x N
    fps: float | None = 30.0  # frames per second to resample every source to; None (or 0) keeps each source's frames
    crop: str = "center"  # "center" (cover the size, cut the overflow from the middle) or "full" (squash)
    dedup: float = 0.0  # drop frames closer than this to the last kept one (0-1 thumbnail distance, dedup.py); 0: off

    def __post_init__(self):
        object.__setattr__(self, "size_px", size_hw(self.size_px))
        object.__setattr__(self, "fps", self.fps or None)  # 0 (as `--fps 0` writes it): keep each source's frames
        if not all(4 <= side <= 4096 for side in self.size_px):
            raise FootageError(f"ingest: --size {format_size(self.size_px)}: each side must be between 4 and 4096 pixels")
        if self.fps is not None and not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise FootageError(f"ingest: --fps {self.fps} must be above 0 and at most 1000 (or 0 to keep source rates)")
        if self.crop not in CROP_MODES:
            raise FootageError(f"ingest: --crop {self.crop!r} must be one of {', '.join(CROP_MODES)}")
        if not 0 <= self.dedup < 1:
            raise FootageError(f"ingest: --dedup {self.dedup} must be at least 0 (off) and below 1 (e.g. 0.01)")

    @property
    def settings(self) -> StoreSettings:
        return StoreSettings(self.size_px, self.fps, self.crop, self.dedup)


@dataclass(frozen=True)
class Source:
    """A candidate file: where it is, its genre, and its name in the manifest (relative to the genre folder)."""

    path: Path
    genre: str
    name: str


@dataclass(frozen=True)
class Problem:
    """A source that failed (nothing kept) or was damaged (its frames before the damage kept)."""

    path: Path
    reason: str
    kept_frames: int = 0

    @property
    def message(self) -> str:
        """The one line shown to the user (a name's newlines and non-UTF-8 bytes escaped: see console.printable)."""
        return printable(f"{self.path}: {self.reason}")


@dataclass(frozen=True)
class FileOutcome:
    source: Source
    status: str  # "added", "skipped" (already in the store) or "failed"
    frames: int = 0  # frames added
    problem: Problem | None = None  # why it failed, or why it was cut short (then status is "added")
    frames_decoded: int | None = None  # with --dedup: frames decoded, of which `frames` were kept ("kept N of M")


class IngestListener:
    """Hears about the run as it goes (for a progress bar); every method does nothing unless overridden."""

    def started(self, sources: list[Source]) -> None:
        pass

    def frames_written(self, count: int) -> None:
        pass

    def problem(self, problem: Problem) -> None:
        pass

    def file_done(self, outcome: FileOutcome) -> None:
        pass


@dataclass
class GenreReport:
    genre: str
    store_path: Path
    files_added: int = 0  # new shards, truncated ones included
    files_skipped: int = 0  # already in the store (same content)
    files_failed: int = 0  # nothing usable
    frames_added: int = 0
    frames_decoded: int = 0  # frames decoded from the added files; more than frames_added when --dedup dropped some
    store_frames: int = 0  # frames in the store after this run
    seconds: float = 0.0  # wall seconds spent on this genre
    leftovers_removed: list[str] = field(default_factory=list)  # unfinished files of an interrupted run

    @property
    def frames_per_second(self) -> float:
        return self.frames_added / self.seconds if self.seconds > 0 else 0.0


@dataclass
class IngestReport:
    genres: list[GenreReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stray_files: list[Path] = field(default_factory=list)  # videos outside any genre folder, not ingested

    @property
    def frames_added(self) -> int:
        return sum(genre.frames_added for genre in self.genres)

    @property
    def nothing_ingested(self) -> bool:
        """True when no source is in a store after this run: the run failed (a run that only skipped did not)."""
        return not any(genre.files_added or genre.files_skipped for genre in self.genres)


def ingest(
    footage_dir: Path,
    data_dir: Path,
    config: IngestConfig = IngestConfig(),
    genre: str | None = None,
    listener: IngestListener | None = None,
) -> IngestReport:
    """Ingest every genre folder of `footage_dir` (or, with `genre`, the flat folder itself) into `data_dir/<genre>/`.

    Raises `FootageError` when there is nothing to ingest, and `StoreError` when a store was made with
    other settings (before any work is done) or cannot be written; every other problem is per file.
    """
    listener = listener or IngestListener()
    sources, stray_files = find_sources(Path(footage_dir), genre)
    report = IngestReport(stray_files=stray_files)
    by_genre: dict[str, list[Source]] = {}
    for source in sources:
        by_genre.setdefault(source.genre, []).append(source)
    with ExitStack() as stack:
        stop = stack.enter_context(StopSignals())  # Ctrl-C stops between frames, never inside the decoder
        settings = config.settings
        folders = store_folders(Path(footage_dir), list(by_genre))
        writers = {name: stack.enter_context(StoreWriter(Path(data_dir) / folders[name], name, settings)) for name in by_genre}
        listener.started(sources)
        for name, genre_sources in by_genre.items():
            genre_report = GenreReport(name, writers[name].path, leftovers_removed=writers[name].removed_leftovers)
            ingest_genre(writers[name], genre_sources, config, listener, genre_report, report.problems, stop)
            report.genres.append(genre_report)
    return report


def ingest_genre(
    writer: StoreWriter,
    sources: list[Source],
    config: IngestConfig,
    listener: IngestListener,
    report: GenreReport,
    problems: list[Problem],
    stop: StopSignals,
) -> None:
    started = time.perf_counter()
    for source in sources:
        outcome = ingest_file(writer, source, config, listener, stop)
        if outcome.status == "added":
            report.files_added += 1
            report.frames_added += outcome.frames
            report.frames_decoded += outcome.frames if outcome.frames_decoded is None else outcome.frames_decoded
        elif outcome.status == "skipped":
            report.files_skipped += 1
        else:
            report.files_failed += 1
        if outcome.problem is not None:
            problems.append(outcome.problem)
            listener.problem(outcome.problem)
        listener.file_done(outcome)
    report.seconds = time.perf_counter() - started
    report.store_frames = sum(shard.frames for shard in writer.shards)


def ingest_file(
    writer: StoreWriter, source: Source, config: IngestConfig, listener: IngestListener, stop: StopSignals
) -> FileOutcome:
    """Add `source` as one shard, skip it when its content is in the store already, or say why it failed."""
    stop.stop_here()
    try:
        check_source(source.path)
        fingerprint = source_fingerprint(source.path)
        if fingerprint in writer.fingerprints:
            return FileOutcome(source, "skipped")
        info, note = add_shard(writer, source, fingerprint, config, listener, stop)
    except FootageError as error:
        return FileOutcome(source, "failed", problem=Problem(source.path, str(error).removeprefix(f"{source.path}: ")))
    except Exception as error:  # a hostile file tripping the decoder in a way nobody foresaw
        if isinstance(error, (OSError, VjganError)) and not isinstance(error, av.FFmpegError):
            raise  # the store or the disk failed, not this source: stop, keeping every committed shard
        reason = f"could not be decoded ({type(error).__name__}: {error})"
        return FileOutcome(source, "failed", problem=Problem(source.path, reason))
    problem = Problem(source.path, note, info.frames) if note else None
    return FileOutcome(source, "added", info.frames, problem, info.frames_decoded)


def add_shard(
    writer: StoreWriter,
    source: Source,
    fingerprint: str,
    config: IngestConfig,
    listener: IngestListener,
    stop: StopSignals,
) -> tuple[ShardInfo, str | None]:
    """Decode `source` into a new shard: (its manifest entry, why it was cut short or damaged, or None).

    With dedup, near-duplicates are dropped as they stream past, and each kept frame's time is
    its position on the store's clock before dropping (seconds from the source's first frame).
    """
    with open_video(source.path) as video:
        shard = writer.new_shard(source.name)
        near_duplicates = NearDuplicateFilter(config.dedup)
        source_fps = round(video.info.fps, 6)
        frame_fps = nominal_fps(config.fps, source_fps)
        decoded, unreported = 0, 0
        try:
            for frame in video.frames(config.fps, config.size_px, config.crop):
                stop.stop_here()
                decoded += 1
                if not near_duplicates.keep(frame):
                    continue
                shard.append(frame, (decoded - 1) / frame_fps)
                unreported += 1
                if unreported == REPORT_EVERY_FRAMES:
                    listener.frames_written(unreported)
                    unreported = 0
            listener.frames_written(unreported)
            info = ShardInfo(
                file=shard.path.name,
                source=source.name,
                fingerprint=fingerprint,
                frames=shard.frames,
                source_fps=source_fps,
                source_size_wh=video.info.display_size_wh,
                truncated=video.ending.truncated,
                frames_decoded=decoded if config.dedup else None,
            )
            writer.commit(shard, info)
        except BaseException:
            shard.discard()
            raise
        return info, video.ending.note


def source_fingerprint(path: Path) -> str:
    """ "sha256:…" of the file's size and its first, middle and last MiB.

    Reading three MiB instead of the whole file keeps re-runs over terabytes of footage instant,
    and two different videos of the same size agreeing in all three places does not happen in practice
    (containers put headers at the start, indexes at the end, and compressed payload in the middle).
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            size_bytes = os.fstat(file.fileno()).st_size
            digest.update(size_bytes.to_bytes(8, "little"))
            for offset in sorted(
                {0, max(0, size_bytes // 2 - FINGERPRINT_CHUNK_BYTES // 2), max(0, size_bytes - FINGERPRINT_CHUNK_BYTES)}
            ):
                file.seek(offset)
                digest.update(file.read(FINGERPRINT_CHUNK_BYTES))
    except OSError as error:
        raise unreadable(path, error) from None
    return f"sha256:{digest.hexdigest()}"


def find_sources(footage_dir: Path, genre: str | None) -> tuple[list[Source], list[Path]]:
    """(candidate sources by genre and name, videos lying outside any genre folder).

    Candidates are whatever is named like a video or a still image, whatever it really is (a folder
    named `clip.mp4` is reported, not walked into); hidden files and folders are ignored.
    """
    if not footage_dir.is_dir():
        what = "no such folder" if not footage_dir.exists() else "not a folder"
        raise FootageError(f"{footage_dir}: {what}; give the folder that holds your footage")
    if genre is not None:
        check_genre_name(genre)
        genre_folders, stray_files = {genre: footage_dir}, []
    else:
        entries = visible_entries(footage_dir)
        genre_folders = {p.name: p for p in sorted(entries) if p.is_dir() and not is_candidate(p)}
        stray_files = sorted(p for p in entries if is_candidate(p))
    sources = [
        Source(path, name, path.relative_to(folder).as_posix())
        for name, folder in genre_folders.items()
        for path in candidates(folder)
    ]
    if not sources:
        looked = "itself" if genre is not None else "its sub-folders (one per genre)"
        hint = f"; {len(stray_files)} video(s) lie directly in it: pass --genre NAME to ingest them" if stray_files else ""
        raise FootageError(f"{footage_dir}: no videos found in {looked}{hint}")
    return sources, stray_files


def store_folders(footage_dir: Path, genres: list[str]) -> dict[str, str]:
    """genre -> the name of its store's folder: the genre's own name made legal on every system.

    Refuses two genres whose stores would share a folder where names ignore case (Windows, macOS).
    """
    folders: dict[str, str] = {}
    first_by_key: dict[str, str] = {}
    for genre in genres:
        folders[genre] = portable_name(genre, fallback="genre")
        other = first_by_key.setdefault(folders[genre].casefold(), genre)
        if other != genre:
            raise FootageError(
                printable(
                    f"{footage_dir / genre}: its store would share the folder {folders[genre]!r} with the genre {other!r} "
                    "on Windows and macOS (names there ignore case and refuse some characters); rename one of the two folders"
                )
            )
    return folders


def check_genre_name(genre: str) -> None:
    if not genre or genre.startswith(".") or "/" in genre or os.sep in genre:
        raise FootageError(f"--genre {genre!r}: a genre must be a plain folder name (no slashes, not hidden)")


def candidates(folder: Path, walked: frozenset[str] = frozenset()) -> list[Path]:
    """Video- or image-named entries under `folder`, in sub-folders too (linked folders once: no loops)."""
    walked = walked | {os.path.realpath(folder)}
    found = []
    for entry in visible_entries(folder):
        if is_candidate(entry):
            found.append(entry)
        elif entry.is_dir() and os.path.realpath(entry) not in walked:
            found.extend(candidates(entry, walked))
    return sorted(found)


def visible_entries(folder: Path) -> list[Path]:
    try:
        return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    except OSError as error:
        raise unreadable(folder, error) from None


def is_candidate(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES | STILL_SUFFIXES
