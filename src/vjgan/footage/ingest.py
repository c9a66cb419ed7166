"""Genre folders of videos in, one frame store per genre out: the dataset tool.

Each source becomes one shard, decoded, resampled and fitted on the way in, written straight to the
store. A file that cannot be used is a `Problem` (one line naming it and the reason), never the end
of the run; a file cut short keeps its frames. Re-running over the same folder skips sources already
in the store by content fingerprint, so an interrupted or extended ingest just runs again.

With `jobs` > 1, worker processes decode several sources at once (the CPU work: decoding, scaling,
cropping). Each worker writes its shard with the store's own ShardWriter under a work name,
`0000-work<k>.npy` in the store folder (k counts tries, so a retry never meets a dead worker's file; no
real shard is numbered 0000, so the store removes it as an unlisted leftover if the run dies), and hands
back only the manifest entry. The parent, the one writer, takes results in source order, renames each
work file to the name `jobs=1` would have given it and lists it in the manifest: the store is byte for
byte the one a single process makes. Frames never travel between processes (a file's frames can be
gigabytes); a rename and a manifest rewrite are all the writer does per shard. A worker that dies (a
decoder crash, a kill) breaks the pool: the files it held are tried again, each in a process of its
own, so the one that crashes again fails alone and the others are stored. Workers end with the parent.
"""

import dataclasses
import hashlib
import itertools
import math
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import av

from vjgan.console import printable
from vjgan.errors import FootageError, VjganError
from vjgan.files import portable_name, publish, writing
from vjgan.footage.decode import check_source, open_video, unreadable
from vjgan.footage.dedup import NearDuplicateFilter
from vjgan.footage.geometry import CROP_MODES, size_hw
from vjgan.footage.store import ShardInfo, ShardWriter, StoreSettings, StoreWriter, nominal_fps, times_path
from vjgan.interrupts import StopSignals
from vjgan.sizes import format_size

VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .qt .mkv .webm .avi .wmv .asf .flv .f4v .mpg .mpeg .m2v .ts .m2ts .mts .vob .ogv .3gp .mxf "
    ".dv .gif .y4m .nut".split()
)
STILL_SUFFIXES = frozenset(".png .jpg .jpeg .webp .bmp .tif .tiff .heic .avif".split())  # refused with a reason
FINGERPRINT_CHUNK_BYTES = 1 << 20  # bytes read at each of the start, middle and end of a source
REPORT_EVERY_FRAMES = 16  # frames between listener.frames_written calls (a progress bar redraw each)
WAIT_SECONDS = 0.1  # how often the parent of decoding workers looks for Ctrl-C while it waits for them


@dataclass(frozen=True)
class IngestConfig:
    """How sources become stored frames; a store keeps these for good (see StoreSettings)."""

    size_px: tuple[int, int] = (96, 96)  # (height, width) of the frames, pixels; an int N means N x N
    fps: float | None = 30.0  # frames per second to resample every source to; None (or 0) keeps each source's frames
    crop: str = "center"  # "center" (cover the size, cut the overflow from the middle) or "full" (squash)
    dedup: float = 0.0  # drop frames closer than this to the last kept one (0-1 thumbnail distance, dedup.py); 0: off
    jobs: int = 1  # source files decoded at once, each in a worker process; 1: all in this process (not a store setting)

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
        if not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise FootageError(f"ingest: --jobs {self.jobs} must be a whole number of at least 1 (files decoded at once)")

    @property
    def settings(self) -> StoreSettings:
        return StoreSettings(self.size_px, self.fps, self.crop, self.dedup)

    @property
    def decode_threads(self) -> int:
        """FFmpeg threads per file: all the cores for one file at a time (0: FFmpeg counts them), else each of
        the `jobs` files at once its share, so N workers do not start N x cores threads."""
        return 0 if self.jobs == 1 else max(1, (os.cpu_count() or 1) // self.jobs)


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
        pool = stack.enter_context(DecodePool(config.jobs)) if config.jobs > 1 else None  # stopped before the writers close
        listener.started(sources)
        if pool is None:
            outcomes = (ingest_file(writers[source.genre], source, config, listener, stop) for source in sources)
        else:  # workers run ahead across genres; outcomes still come in this order
            outcomes = pool.ingest([(writers[source.genre], source) for source in sources], config, listener, stop)
        for name, genre_sources in by_genre.items():  # (sources come grouped by genre)
            genre_report = GenreReport(name, writers[name].path, leftovers_removed=writers[name].removed_leftovers)
            tally(itertools.islice(outcomes, len(genre_sources)), writers[name], listener, genre_report, report.problems)
            report.genres.append(genre_report)
    return report


def tally(outcomes, writer: StoreWriter, listener: IngestListener, report: GenreReport, problems: list[Problem]) -> None:
    """Count a genre's file outcomes (an iterator doing the work as it is read) into `report`."""
    started = time.perf_counter()
    for outcome in outcomes:
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
    checked = checked_fingerprint(writer, source)
    if isinstance(checked, FileOutcome):
        return checked
    return outcome_of(source, lambda: added(source, *add_shard(writer, source, checked, config, listener, stop)))


def checked_fingerprint(writer: StoreWriter, source: Source) -> "str | FileOutcome":
    """The source's fingerprint, or its outcome when it is not a usable file or is in the store already."""
    fingerprint = outcome_of(source, lambda: usable_fingerprint(source.path))
    if isinstance(fingerprint, str) and fingerprint in writer.fingerprints:
        return FileOutcome(source, "skipped")
    return fingerprint


def outcome_of(source: Source, attempt):
    """`attempt()`, or a failed outcome saying why when the source is at fault (not the store or the disk)."""
    try:
        return attempt()
    except FootageError as error:
        return FileOutcome(source, "failed", problem=Problem(source.path, str(error).removeprefix(f"{source.path}: ")))
    except Exception as error:  # a hostile file tripping the decoder in a way nobody foresaw
        if isinstance(error, (OSError, VjganError)) and not isinstance(error, av.FFmpegError):
            raise  # the store or the disk failed, not this source: stop, keeping every committed shard
        reason = f"could not be decoded ({type(error).__name__}: {error})"
        return FileOutcome(source, "failed", problem=Problem(source.path, reason))


def added(source: Source, info: ShardInfo, note: str | None) -> FileOutcome:
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
    with open_video(source.path, config.decode_threads) as video:
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


def usable_fingerprint(path: Path) -> str:
    """`source_fingerprint` of a file that passes `check_source` (a `FootageError` saying why not otherwise)."""
    check_source(path)
    return source_fingerprint(path)


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


class DecodePool:
    """`jobs` worker processes decoding sources into work shards, which the parent lists in source order."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        methods = multiprocessing.get_all_start_methods()  # never fork: the parent has threads (fork after threads is unsafe)
        self.context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self.stopping = self.context.Event()  # set when the parent stops: workers stop at their next frame
        self.executor = self.new_executor(jobs)
        self.alone: set[ProcessPoolExecutor] = set()  # one-worker pools retrying the files of a pool that broke
        self.tries = 0  # numbers work files, so a retry never meets a dead worker's file

    def new_executor(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=self.context, initializer=start_worker, initargs=(self.stopping,))

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for executor in [self.executor, *self.alone]:
            executor.shutdown(wait=True, cancel_futures=True)

    def ingest(self, work: list[tuple[StoreWriter, Source]], config: IngestConfig, listener: IngestListener, stop):
        """Each source's outcome, in order, as `ingest_file` gives it; at most `jobs` files decoding at once."""
        waiting = list(reversed(work))  # pop() gives the next source and the store it goes to
        results: dict[Source, tuple[FileOutcome, ShardInfo | None]] = {}  # decoded (or failed), not yet reported
        running: dict[Future, tuple[StoreWriter, Source, ProcessPoolExecutor]] = {}
        for writer, source in work:
            while source not in results:
                while waiting and len(running) < self.jobs:
                    self.start(*waiting.pop(), config, running, results)
                done, _ = wait(running, timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
                stop.stop_here()
                for future in done:
                    self.finish(future, config, running, results)
            yield self.adopt(writer, *results.pop(source), listener)

    def start(self, writer, source, config, running, results, executor: ProcessPoolExecutor | None = None) -> None:
        """Check `source` here (cheap) and send it to a worker, or record why it needs none."""
        checked = checked_fingerprint(writer, source)
        if isinstance(checked, FileOutcome):
            results[source] = (checked, None)
            return
        self.tries += 1
        work_path = writer.path / f"0000-work{self.tries}.npy"  # an unlisted shard name: a leftover if the run dies
        job = (decode_to_work_file, source, checked, config, work_path)
        if executor is None:
            try:
                running[self.executor.submit(*job)] = (writer, source, self.executor)
                return
            except BrokenProcessPool:  # a worker died while idle (its running files, if any, are retried alone)
                self.restart()
            executor = self.executor
        running[executor.submit(*job)] = (writer, source, executor)

    def restart(self) -> None:
        self.executor.shutdown(wait=False)
        self.executor = self.new_executor(self.jobs)

    def finish(self, future: Future, config, running, results) -> None:
        """Take a worker's result. A worker that died breaks its pool and every file the pool held: each is tried
        again in a process of its own, where a crash can only be that file's doing."""
        writer, source, executor = running.pop(future)
        alone = executor in self.alone
        if alone:
            self.alone.remove(executor)
            executor.shutdown(wait=True)
        try:
            results[source] = future.result()
            return
        except BrokenProcessPool:
            pass
        if alone:  # it crashed a process decoding it alone: the file is the cause
            reason = "crashed the process decoding it, twice (a decoder fault); nothing was kept from it"
            results[source] = (FileOutcome(source, "failed", problem=Problem(source.path, reason)), None)
            return
        if executor is self.executor:  # the first of its files to come back broken (the others follow here too)
            self.restart()
        self.start_alone(writer, source, config, running, results)

    def start_alone(self, writer, source, config, running, results) -> None:
        executor = self.new_executor(1)
        self.alone.add(executor)
        self.start(writer, source, config, running, results, executor)

    def adopt(self, writer: StoreWriter, outcome: FileOutcome, info: ShardInfo | None, listener: IngestListener) -> FileOutcome:
        """List a worker's shard in the store under the name `ingest_file` would have given it."""
        if info is None:
            return outcome
        work = AdoptedShard(writer, outcome.source, info)
        if info.fingerprint in writer.fingerprints:  # the same content as a source stored earlier in this run
            work.discard()
            return FileOutcome(outcome.source, "skipped")
        writer.commit(work, info)
        listener.frames_written(info.frames)
        return outcome


class AdoptedShard:
    """A worker's finished shard as `StoreWriter.commit` takes a ShardWriter: committing renames it into place."""

    def __init__(self, writer: StoreWriter, source: Source, info: ShardInfo):
        self.path, self.frames = writer.next_shard_path(source.name), info.frames
        self.times_path = times_path(self.path) if info.times_file is not None else None
        self.renames = {writer.path / info.file: self.path}
        if self.times_path is not None:  # the times go first, as ShardWriter.commit does it
            self.renames = {writer.path / info.times_file: self.times_path, **self.renames}

    def commit(self) -> None:
        with writing(self.path, "a frame store shard"):
            for work_path, path in self.renames.items():
                publish(work_path, path)

    def discard(self) -> None:
        for work_path in self.renames:
            work_path.unlink(missing_ok=True)


class WorkShardWriter:
    """What `add_shard` asks of a StoreWriter, in a worker: one shard written whole under a work name, no manifest."""

    def __init__(self, path: Path, settings: StoreSettings):
        self.path = path
        self.settings = settings
        self.info: ShardInfo | None = None  # the shard's manifest entry, naming its work files, once committed

    def new_shard(self, source: str) -> ShardWriter:
        height, width = self.settings.size_px
        return ShardWriter(self.path, (height, width, 3), timed=self.settings.dedup > 0)

    def commit(self, shard: ShardWriter, info: ShardInfo) -> None:
        shard.commit()
        times_file = shard.times_path.name if shard.times_path is not None else None
        self.info = dataclasses.replace(info, file=shard.path.name, times_file=times_file)


class WorkerStop:
    """A worker's StopSignals: it stops at the next frame once the parent asks (Ctrl-C there)."""

    def __init__(self, stopping):
        self.stopping = stopping

    def stop_here(self) -> None:
        if self.stopping.is_set():
            raise KeyboardInterrupt


WORKER_STOP: list[WorkerStop] = []  # the worker process's own, set once as it starts


def start_worker(stopping) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    WORKER_STOP.append(WorkerStop(stopping))
    threading.Thread(target=exit_with_parent, daemon=True).start()


def exit_with_parent() -> None:
    """End this worker when its parent dies (killed): a busy worker would otherwise finish its file for nobody,
    and an idle one wait for work forever (it holds both ends of its work queue). What it leaves is a leftover
    the store removes."""
    multiprocessing.parent_process().join()  # the parent's sentinel: with forkserver too, the ingest process
    os._exit(1)


def decode_to_work_file(
    source: Source, fingerprint: str, config: IngestConfig, work_path: Path
) -> tuple[FileOutcome, ShardInfo | None]:
    """In a worker: decode `source` into the shard `work_path` (its outcome, and its manifest entry if it was stored)."""
    work = WorkShardWriter(work_path, config.settings)
    listener = IngestListener()  # progress is counted by the parent as it lists shards
    outcome = outcome_of(source, lambda: added(source, *add_shard(work, source, fingerprint, config, listener, WORKER_STOP[0])))
    return outcome, work.info
