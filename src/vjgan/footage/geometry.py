"""How a decoded frame becomes a stored square: the size to scale to, the turn, the crop.

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
    size_px: int  # side of the square result


def plan_frame(
    coded_wh: tuple[int, int], size_px: int, crop: str, rotation_degrees: int = 0, sample_aspect: float = 1.0
) -> FramePlan:
    """The plan for frames of `coded_wh` pixels shown turned by `rotation_degrees` (counter-clockwise).

    `center` is the original workflow: scale so the short display side is `size_px` and cut the middle
    out of the long side (landscape: height = size, width cropped; portrait: the other way round).
    `full` squashes the whole picture into the square. `sample_aspect` (pixel width / height) makes
    anamorphic sources keep their displayed proportions.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    quarter_turns = round(rotation_degrees / 90) % 4
    coded_w, coded_h = coded_wh
    display_w, display_h = coded_w * sample_aspect, coded_h
    if quarter_turns % 2:
        display_w, display_h = display_h, display_w
    if crop == "full":
        scaled_w = scaled_h = size_px
    elif display_w >= display_h:
        scaled_w, scaled_h = max(size_px, round(display_w * size_px / display_h)), size_px
    else:
        scaled_w, scaled_h = size_px, max(size_px, round(display_h * size_px / display_w))
    crop_top, crop_left = (scaled_h - size_px) // 2, (scaled_w - size_px) // 2
    scale_wh = (scaled_h, scaled_w) if quarter_turns % 2 else (scaled_w, scaled_h)
    return FramePlan(scale_wh, quarter_turns, crop_top, crop_left, size_px)


def fit(plan: FramePlan, scaled: np.ndarray) -> np.ndarray:
    """Turn and crop a frame already scaled to `plan.scale_wh`: (h, w, 3) -> (size, size, 3), contiguous."""
    turned = np.rot90(scaled, plan.quarter_turns) if plan.quarter_turns else scaled
    size = plan.size_px
    return np.ascontiguousarray(turned[plan.crop_top : plan.crop_top + size, plan.crop_left : plan.crop_left + size])
