"""PNG frames: a clip written as a folder of `frame_000000.png`, ... (`PngEncoder`)."""

import os
from pathlib import Path

import numpy as np
from PIL import Image

from vjgan.errors import RenderError
from vjgan.files import PARTIAL_SUFFIX, atomic_path
from vjgan.render.video.frames import Scaler

PNG_COMPRESS_LEVEL = 1  # zlib level 0-9; 1 writes 1080p frames several times faster than the default 6


class PngEncoder:
    """A folder of `frame_000000.png`, ...; each frame is written whole (`files.atomic_path`), and frames left
    over from a longer earlier render are removed."""

    takes_yuv420p = False  # PNG is RGB

    def __init__(self, folder: Path, scaler: Scaler):
        self.folder = folder
        self.scaler = scaler
        if folder.exists() and not folder.is_dir():
            raise RenderError(f"{folder}: is a file; PNG frames need a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RenderError(f"{folder}: cannot create the folder ({error.strerror or error})") from None
        if not os.access(folder, os.W_OK):
            raise RenderError(f"{folder}: folder is not writable")
        self.frames_encoded = 0

    def encode(self, frames: np.ndarray) -> None:
        for rgb in self.scaler.rgb(frames):  # each frame whole or not at all: a killed render leaves no half PNG
            with atomic_path(self.frame_path(self.frames_encoded), "a PNG frame") as partial:
                Image.fromarray(rgb).save(partial, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            self.frames_encoded += 1

    def finish(self, n_frames: int) -> None:
        """Remove frames past `n_frames` left by a longer earlier render, and a killed render's `.partial` frames."""
        for stale in self.folder.glob("frame_*.png*"):
            index = stale.name.removeprefix("frame_").removesuffix(PARTIAL_SUFFIX).removesuffix(".png")
            if index.isdigit() and (stale.name.endswith(PARTIAL_SUFFIX) or int(index) >= n_frames):
                stale.unlink()

    def discard(self) -> None:
        """Frames already written stay: each is a complete file, and the next render overwrites them."""

    def frame_path(self, index: int) -> Path:
        return self.folder / f"frame_{index:06d}.png"
