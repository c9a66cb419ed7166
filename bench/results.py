"""Writing a benchmark's own section of bench/RESULTS.md, leaving every other section as it is."""

import re
import resource
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(title: str, lines: list[str]) -> None:
    """Replace the section headed `## {title}` (up to the next `## ` heading) with `lines`, or append it."""
    heading = f"## {title}"
    text = RESULTS.read_text() if RESULTS.exists() else "# vjgan benchmarks\n"
    section = "\n".join([heading, "", *lines]).rstrip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
    print(f"\nwrote the {heading!r} section of {RESULTS}")


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg, the piped encoders)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
