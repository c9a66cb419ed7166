"""The one place that talks to the terminal: a shared rich console and progress-bar factory.

Progress goes to stderr so that stdout stays clean for anything a user pipes.
"""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)


def make_progress(*extra_columns) -> Progress:
    """A progress bar with count, elapsed and remaining time; `extra_columns` add rates or losses."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
