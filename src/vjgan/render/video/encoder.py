"""What every encoder offers the writer thread (`Encoder`), and where a clip file is written until it is whole.

`writer.ClipWriter` owns the thread and the queue; an encoder owns one output (a file or a folder of
frames) and turns chunks of frames into it. Video files are written to `<name>.partial`
(`files.partial_path`) and renamed by `finish`, so a failed or interrupted render never leaves a file
that looks finished; a `.partial` left by a killed render is replaced by the next.
"""

from pathlib import Path
from typing import Protocol

import numpy as np

from vjgan.errors import RenderError
from vjgan.files import partial_path
from vjgan.render.video.frames import Scaler


class Encoder(Protocol):
    """One clip's output, fed on the writer thread: `encode` per chunk, then `finish` or `discard` once."""

    scaler: Scaler  # frames as written -> the clip's size and pixel format
    takes_yuv420p: bool  # whether `encode` also takes yuv420p chunks, (n, H * 3 // 2, W) uint8, as they are

    def encode(self, frames: np.ndarray) -> None:
        """Encode a chunk: RGB (n, h, w, 3) uint8, or yuv420p where `takes_yuv420p`."""

    def finish(self, n_frames: int) -> None:
        """Complete the clip of `n_frames` frames and move it into place; a write failure is raised as it is."""

    def discard(self) -> None:
        """Abandon the clip: nothing that looks finished is left behind."""


def partial_path_for(path: Path) -> Path:
    """`<path>.partial`, where a clip file is written until it is whole, once `path` is known to be writable there.

    A `.partial` left by a killed render is removed first, so the new clip is a new file: an FFmpeg
    orphaned by that kill, still finishing the old one, cannot write into it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RenderError(f"{path}: cannot create its folder ({error.strerror or error})") from None
    if path.is_dir():
        raise RenderError(f"{path}: is a folder; give a file name for the clip")
    partial = partial_path(path)
    try:
        partial.unlink(missing_ok=True)
    except OSError as error:
        raise RenderError(f"{partial}: cannot replace a killed render's leftover ({error.strerror or error})") from None
    return partial
