"""Every genre in one command: `vjgan train DATA_DIR --runs RUNS_DIR` trains one run per genre store.

The genres train one after the other, each in its own run `RUNS_DIR/<genre>` (the folder name of its
store), so the whole set resumes as each run does: re-running continues every unfinished run from its
newest checkpoint and passes over the finished ones. A genre that fails (an empty or damaged store, a
run made with other settings) is one line in the table, and the others still train.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vjgan.console import console
from vjgan.errors import StoreError, VjganError
from vjgan.evaluate import read_report_rows
from vjgan.footage.store import MANIFEST
from vjgan.run.directory import RunDir
from vjgan.train.config import TrainConfig
from vjgan.train.loop import train


@dataclass(frozen=True)
class GenreResult:
    genre: str
    run_dir: Path
    images_seen: int  # all sessions together (0 when the run never started)
    images_total: int  # the run's schedule
    seconds: float  # training time spent, all sessions together
    seconds_left: float | None  # at the run's average speed so far (None: not known yet, or finished)
    swd: tuple[int, float] | None  # (images seen, SWD x 1e3) of the newest snapshot `vjgan eval` measured; None: none
    error: str | None = None  # why this genre did not train (None: it did)


def genre_stores(data_dir: Path) -> list[Path]:
    """The genre stores in `data_dir` (as `vjgan ingest --out` makes: each subfolder with a manifest), by name."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise StoreError(f"{data_dir}: no such folder of genre stores; give the folder `vjgan ingest --out` wrote")
    stores = sorted(folder for folder in data_dir.iterdir() if (folder / MANIFEST).is_file())
    if not stores:
        raise StoreError(f"{data_dir}: no genre stores in it (subfolders with {MANIFEST}); ingest footage into it first")
    return stores


def train_genres(
    data_dir: Path, runs_dir: Path, config_for: Callable[[Path], TrainConfig], minutes_per_genre: float | None = None
) -> list[GenreResult]:
    """Train a run per genre store of `data_dir` into `runs_dir/<genre>`, each with `config_for(store)` and at
    most `minutes_per_genre` minutes this session (None: until its schedule is done), one after the other."""
    results = []
    for store in genre_stores(data_dir):
        run_dir = Path(runs_dir) / store.name
        try:
            config = dataclasses.replace(config_for(store), store=str(store))
            if minutes_per_genre is not None:
                config = dataclasses.replace(config, minutes=minutes_per_genre)
            if images_seen(run_dir) < config.images_total:  # a finished run is passed over without loading its store
                train(config, run_dir)
            results.append(genre_result(store.name, run_dir, config))
        except VjganError as error:
            console.print(f"{store.name}: not trained: {error}", style="red", markup=False, soft_wrap=True)
            results.append(GenreResult(store.name, run_dir, images_seen(run_dir), 0, 0.0, None, None, str(error)))
    return results


def images_seen(run_dir: Path) -> int:
    counters = RunDir(run_dir).counters()
    return counters.images_seen if counters is not None else 0


def genre_result(genre: str, run_dir: Path, config: TrainConfig) -> GenreResult:
    counters = RunDir(run_dir).counters()
    images_left = config.images_total - counters.images_seen
    seconds_left = images_left * counters.seconds / counters.images_seen if images_left > 0 and counters.seconds > 0 else None
    return GenreResult(
        genre, run_dir, counters.images_seen, config.images_total, counters.seconds, seconds_left, measured_swd(run_dir)
    )


def measured_swd(run_dir: Path) -> tuple[int, float] | None:
    """The newest SWD in the run's eval.json. Not measured here: SWD of one snapshot against a 256-frame sample
    costs about 5 s at 96 px and 20 s at 256 px on two CPU cores, a genre each time the table is shown."""
    try:
        newest = read_report_rows(run_dir)[-1]
        return newest["images_seen"], newest["swd_x1e3"]
    except (OSError, ValueError, KeyError, IndexError):  # not measured yet (or the report is unreadable: measure again)
        return None
