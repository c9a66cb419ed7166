"""Frames as the writer is given them -> PyAV frames an encoder takes: scaled, converted, tagged BT.709.

Both ways a clip's yuv420p frames are made (swscale from RGB here, or `render.layout.to_yuv420p` where
the frames were composed) are tagged alike, so that they give the same picture.
"""

from dataclasses import dataclass

import av
import numpy as np

# `render.layout` filter names -> swscale's, for frames written at another size than the clip's.
SCALE_INTERPOLATIONS = {"nearest": "POINT", "bilinear": "BILINEAR", "bicubic": "BICUBIC", "lanczos": "LANCZOS"}


@dataclass(frozen=True)
class Scaler:
    """Frames as written -> the clip's size and pixel format, in one swscale call (C, off the GIL).

    A renderer on the CPU may hand over a small canvas: swscale converts it to YUV at its own size and
    then scales the planes, so a 384x216 canvas becomes a 1080p yuv420p frame in less time than a 1080p
    RGB frame takes to convert (bench/render.py). Frames already at the clip's size are only converted.
    """

    frame_size_wh: tuple[int, int]
    filter: str = "bicubic"  # a `render.layout.FILTERS` name

    def video_frame(self, rgb: np.ndarray, pix_fmt: str) -> av.VideoFrame:
        width, height = self.frame_size_wh
        colour = {} if pix_fmt == "rgb24" else {"dst_colorspace": "ITU709", "dst_color_range": "MPEG"}
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return frame.reformat(width, height, pix_fmt, interpolation=SCALE_INTERPOLATIONS[self.filter], threads=1, **colour)

    def rgb(self, frames: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) -> (n, H, W, 3) uint8, for the encoders that work in RGB (GIF, PNG, HAP, DXV)."""
        if frames.shape[1:3] == self.frame_size_wh[::-1]:
            return frames
        return np.stack([self.video_frame(rgb, "rgb24").to_ndarray() for rgb in frames])


def yuv420p_frame(planes: np.ndarray) -> av.VideoFrame:
    """(H * 3 // 2, W) uint8 yuv420p (PyAV's layout: Y, then U and V) -> a frame tagged as `Scaler` makes them:
    BT.709, limited range."""
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.colorspace = frame.color_range = 1  # AVCOL_SPC_BT709, AVCOL_RANGE_MPEG
    return frame
