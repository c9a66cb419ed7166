"""Frame sizes: how the command line writes them, how vjgan holds them, and the limits a clip can have.

The command line writes a size as ``WIDTHxHEIGHT`` (``176x96``: 176 wide, 96 high), like every video
tool, or as one number. Inside vjgan two orders are held, each named for it:

- ``size_px`` = ``(height, width)``, numpy's order: frame stores, models, snapshots. One number N is
  a height; its width follows an aspect (square when none is given): ``parse_size_hw``.
- ``frame_size_wh`` = ``(width, height)``, the writers' order: clips. Both sides are always given:
  ``parse_frame_size_wh``, which also refuses what no writer can produce (``check_frame_size``).

Every refusal is one `SizeError` whose message starts ``size ...`` and teaches the form. Torch-free,
so every command's flags can use it without paying for torch.
"""

import math
import re

from vjgan.errors import SizeError

ASPECT_STEP_PX = 16  # a width made from an aspect is rounded to this: the model's size step (networks.SIZE_STEP_PX)
MAX_FRAME_SIZE_WH = (7680, 4320)  # largest clip (8K UHD); portrait sizes up to the same pixel count
MIN_FRAME_SIDE_PX = 16  # smallest clip width or height
SIZE_TEXT = re.compile(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?")  # "96" or "176x96" (width x height)
ASPECT_TEXT = re.compile(r"(\d+):(\d+)")  # "16:9" (width:height)


def parse_size_hw(text: str) -> tuple[int, int | None]:
    """ "96" -> (96, None): a height, its width to follow an aspect; "176x96" (width x height) -> (96, 176)."""
    sides = size_sides(text)
    if sides is None or min(side for side in sides if side is not None) < 1:
        raise SizeError(f"size {text!r}: give the frame height in pixels (96) or width x height (176x96: 176 wide, 96 high)")
    width_or_height, height = sides
    if height is None:
        return (width_or_height, None)
    return (height, width_or_height)


def parse_full_size_hw(text: str) -> tuple[int, int]:
    """ "96" -> (96, 96), "176x96" (width x height) -> (96, 176): a size whose one number means a square."""
    return resolve_size_hw(parse_size_hw(text), None)


def parse_frame_size_wh(text: str) -> tuple[int, int]:
    """ "1920x1080" -> (1920, 1080), refusing what no writer can produce."""
    sides = size_sides(text)
    if sides is None or sides[1] is None:
        raise SizeError(f"size {text!r}: not WIDTHxHEIGHT; write it like 1920x1080")
    check_frame_size(sides)
    return sides


def size_sides(text: str) -> tuple[int, int | None] | None:
    """The numbers of "96" -> (96, None) or "176x96" -> (176, 96), in the order written; None if not a size."""
    match = SIZE_TEXT.fullmatch(text)
    if not match:
        return None
    return (int(match[1]), int(match[2]) if match[2] is not None else None)


def parse_aspect_wh(text: str) -> tuple[int, int]:
    """ "16:9" -> (16, 9), width to height."""
    match = ASPECT_TEXT.fullmatch(text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise SizeError(f"aspect {text!r}: give width:height in whole numbers, e.g. 16:9, 4:3 or 9:16 (portrait)")
    return (int(match[1]), int(match[2]))


def size_for_aspect(height_px: int, aspect_wh: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of frames `height_px` high in the aspect width:height.

    A non-square width is rounded to the nearest multiple of 16, the step every model size takes,
    so a store made this way trains as is: 16:9 at 96 is 96x176 (96 * 16/9 = 170.7), at 128 it is
    128x224, at 144 exactly 144x256. Square stays exactly square, whatever the height.
    """
    aspect_w, aspect_h = aspect_wh
    if aspect_w == aspect_h:
        return (height_px, height_px)
    steps = math.floor(height_px * aspect_w / aspect_h / ASPECT_STEP_PX + 0.5)
    return (height_px, max(1, steps) * ASPECT_STEP_PX)


def resolve_size_hw(size: tuple[int, int | None], aspect_wh: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) from a parsed size and an optional aspect: a height alone takes the aspect's width
    (square without one); a size with both sides already has its shape, so an aspect too is refused."""
    height, width = size
    if width is None:
        return size_for_aspect(height, aspect_wh or (1, 1))
    if aspect_wh is not None:
        raise SizeError(
            f"--size {width}x{height} already sets the shape; drop --aspect, or give the height alone "
            f"(--size {height} --aspect {aspect_wh[0]}:{aspect_wh[1]})"
        )
    return (height, width)


def format_size(size_px: tuple[int, int]) -> str:
    """A frame size as the command line writes it: "96" for 96x96, "176x96" (width x height) otherwise."""
    height, width = size_px
    return str(height) if height == width else f"{width}x{height}"


def check_frame_size(frame_size_wh: tuple[int, int]) -> None:
    """Even sides (H.264 and ProRes store colour at half width), at least 16 px, at most 8K's pixel count."""
    width, height = frame_size_wh
    max_width, max_height = MAX_FRAME_SIZE_WH
    if min(width, height) < MIN_FRAME_SIDE_PX:
        raise SizeError(f"size {width}x{height}: sides must be at least {MIN_FRAME_SIDE_PX} px")
    if max(width, height) > max_width or width * height > max_width * max_height:
        raise SizeError(f"size {width}x{height}: larger than {max_width}x{max_height}")
    if width % 2 or height % 2:
        even = f"{width + width % 2}x{height + height % 2}"
        raise SizeError(f"size {width}x{height}: width and height must be even for video chroma; try {even}")
