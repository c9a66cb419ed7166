"""Writing a benchmark's own section of bench/RESULTS.md, leaving every other section as it is."""

import re
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
