"""What surrounds one training session: stopping cleanly on request, and the progress bar."""

import time
from collections.abc import Callable

from rich.progress import TextColumn, TimeRemainingColumn
from rich.text import Text

from vjgan.console import console, make_progress
from vjgan.interrupts import StopSignals
from vjgan.run.directory import RunDir
from vjgan.train.config import TrainConfig
from vjgan.train.distributed import World, any_rank
from vjgan.train.expectations import quality_eta_line


class StopRequest(StopSignals):
    """Ends a session cleanly at the time budget or on Ctrl-C / SIGTERM (a second Ctrl-C aborts at once)."""

    def __init__(self, minutes: float | None, session_start: float):
        super().__init__()
        self.deadline = None if minutes is None else session_start + minutes * 60

    def seconds_left(self) -> float | None:
        """Seconds to the time budget's end; None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    @property
    def interrupted(self) -> bool:
        return self.requested

    def agreed(self, world: World, at_log_step: bool) -> bool:
        """Whether to stop now; under torchrun the ranks agree at log steps (a collective)."""
        if world.size > 1 and not at_log_step:
            return False
        time_is_up = self.deadline is not None and time.monotonic() >= self.deadline
        return any_rank(time_is_up or self.interrupted, world)


class SessionRemainingColumn(TimeRemainingColumn):
    """rich's time remaining, capped by the session's deadline: a `--minutes` session ends there, long before
    the run's image schedule (5,000,000 images by default) would."""

    def __init__(self, seconds_left: Callable[[], float | None]):
        super().__init__()
        self.seconds_left = seconds_left  # StopRequest.seconds_left: None without a time budget

    def render(self, task) -> Text:
        seconds_left = self.seconds_left()
        if seconds_left is None or (task.time_remaining is not None and task.time_remaining <= seconds_left):
            return super().render(task)
        minutes, seconds = divmod(int(seconds_left), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class TrainingProgress:
    """The progress bar (rank 0): images seen / total, images/s, D and G loss, time left (to the deadline
    where that comes first); and, once the first log window has measured the throughput, one line with the
    expected time to good quality (`train.expectations`)."""

    def __init__(self, run: RunDir, config: TrainConfig, images_seen: int, enabled: bool, stop: StopRequest):
        self.enabled = enabled
        self.config = config
        self.stop = stop
        self.eta_shown = False
        self.bar = make_progress(
            TextColumn("{task.fields[rate]} img/s"),
            TextColumn("D {task.fields[d_loss]}"),
            TextColumn("G {task.fields[g_loss]}"),
            remaining=SessionRemainingColumn(stop.seconds_left),
        )
        self.task = self.bar.add_task(
            f"train {run.path.name}", total=config.images_total, completed=images_seen, rate="-", d_loss="-", g_loss="-"
        )

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc_info):
        if self.enabled:
            self.bar.stop()

    def advance(self, images_seen: int) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=images_seen)

    def show(self, record: dict) -> None:
        """A log record (made at the log cadence, the loop's only host sync) onto the bar; the first also gives the ETA line."""
        if not self.enabled:
            return
        if not self.eta_shown:
            seconds_left = self.stop.seconds_left()
            eta = quality_eta_line(self.config, record["images_seen"], record["images_per_second"], seconds_left)
            console.print(eta, markup=False, soft_wrap=True)
            self.eta_shown = True
        self.bar.update(
            self.task,
            rate=f"{record['images_per_second']:.0f}",
            d_loss=f"{record['d_loss']:.3f}",
            g_loss=f"{record['g_loss']:.3f}",
        )
