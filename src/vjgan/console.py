"""The one place that talks to the terminal: a shared rich console and progress-bar factory.

Progress goes to stderr so that stdout stays clean for anything a user pipes.
"""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, highlight=False)

_CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in [*range(32), 127]}


def printable(text: str) -> str:
    """`text` safe to print on one line: bytes of a file name that were not UTF-8 (which Python keeps as
    lone surrogates) are shown as `\\xe9`, and control characters (a newline in a name) as `\\x0a`."""
    raw = text.encode("utf-8", "surrogateescape")  # a name's original bytes
    return raw.decode("utf-8", "backslashreplace").translate(_CONTROL_CHARACTERS)


def make_progress(*extra_columns, remaining: ProgressColumn | None = None) -> Progress:
    """A progress bar with count, elapsed and remaining time; `extra_columns` add rates or losses, and
    `remaining` replaces rich's remaining time where the work can end before its count does."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        remaining or TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class FramesPerSecondColumn(ProgressColumn):
    """A progress bar's rate in frames/s, for renders (rich's own columns count items or bytes)."""

    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:.1f} frames/s")
