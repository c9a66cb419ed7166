"""How a decoded frame becomes a stored frame of (height, width): the size to scale to, the turn, the crop.

Only arithmetic and one numpy step live here, so each rule is testable without a video file.
The scaling itself is done by swscale in `decode.py`, in the same call that converts the pixel
format, so a 4K frame is never held as full-size RGB; this module only says to which size.
"""

from dataclasses import dataclass

import numpy as np

CROP_MODES = ("center", "full")


@dataclass(frozen=True)
class FramePlan:
    """Where one source geometry goes: scale (in the coded orientation), turn, then crop."""

    scale_wh: tuple[int, int]  # pixels swscale produces, before the turn (coded orientation)
    quarter_turns: int  # counter-clockwise quarter turns, as np.rot90's k, to the display orientation
    crop_top: int  # pixels cut from the top of the turned frame
    crop_left: int  # pixels cut from the left of the turned frame
    size_hw: tuple[int, int]  # (height, width) of the result


def size_hw(size_px: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a frame size given as (height, width) or as one side N, the original workflow's N x N."""
    if isinstance(size_px, int):
        return (size_px, size_px)
    height, width = size_px
    return (int(height), int(width))


def plan_frame(
    coded_wh: tuple[int, int],
    size_px: int | tuple[int, int],
    crop: str,
    rotation_degrees: int = 0,
    sample_aspect: float = 1.0,
) -> FramePlan:
    """The plan for frames of `coded_wh` pixels shown turned by `rotation_degrees` (counter-clockwise).

    `size_px` is the result's (height, width), or one side of a square. `center` scales so the
    picture just covers that size and cuts the overflow out of the middle: for a square, the original
    workflow (landscape: height = size, width cropped; portrait: the other way round); for 16:9 from
    4:3 or portrait footage, the middle band. `full` squashes the whole picture into the size.
    `sample_aspect` (pixel width / height) makes anamorphic sources keep their displayed proportions.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    height, width = size_hw(size_px)
    quarter_turns = round(rotation_degrees / 90) % 4
    coded_w, coded_h = coded_wh
    display_w, display_h = coded_w * sample_aspect, coded_h
    if quarter_turns % 2:
        display_w, display_h = display_h, display_w
    if crop == "full":
        scaled_w, scaled_h = width, height
    elif height * display_w >= width * display_h:  # the source is relatively wider: the height binds
        scaled_w, scaled_h = max(width, round(display_w * height / display_h)), height
    else:
        scaled_w, scaled_h = width, max(height, round(display_h * width / display_w))
    crop_top, crop_left = (scaled_h - height) // 2, (scaled_w - width) // 2
    scale_wh = (scaled_h, scaled_w) if quarter_turns % 2 else (scaled_w, scaled_h)
    return FramePlan(scale_wh, quarter_turns, crop_top, crop_left, (height, width))


def fit(plan: FramePlan, scaled: np.ndarray) -> np.ndarray:
    """Turn and crop a frame already scaled to `plan.scale_wh`: (h, w, 3) -> (height, width, 3), contiguous."""
    turned = np.rot90(scaled, plan.quarter_turns) if plan.quarter_turns else scaled
    height, width = plan.size_hw
    return np.ascontiguousarray(turned[plan.crop_top : plan.crop_top + height, plan.crop_left : plan.crop_left + width])
