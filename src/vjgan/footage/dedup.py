"""Dropping near-duplicate frames at ingest (`vjgan ingest --dedup THRESHOLD`).

Video holds still a lot: titles, slow fades, held shots, a 24 fps source resampled to 30 (every
fourth frame repeated). A few hundred frames of such footage teach a GAN a handful of pictures, which
it memorises or collapses onto. Thinning them at ingest costs one small thumbnail per frame.

The measure: each frame is shrunk to a 16 x 16 colour thumbnail (block means), and two frames are
as far apart as the root-mean-square difference of their thumbnails, in [0, 1] units (1 = black vs
white everywhere; the unit of `evaluate.diversity`, so a threshold reads against a store's diversity).
Why this thumbnail:
- block means average away what is not content: codec noise, grain, dithering (a 96 px frame's
  6 x 6 blocks divide pixel noise by 6), so a held shot measures near 0, not the pixels' noise floor;
- 16 x 16 still sees a small thing move (a spark or a word over 1/16 of the width changes its blocks
  by a lot), where 8 x 8 would blur it into the background;
- colour, not grey: VJ loops cycle hue at constant brightness, which a grey thumbnail cannot see.
Why RMS rather than the mean absolute difference: both are 1/255 for a one-level fade, but a spark
moving over black changes a few blocks a lot, which the mean dilutes by the whole frame's area.
On ../shared/footage at 32 px (180-frame clips), the mean absolute difference at 0.01 kept 1 frame
of each dark particle clip (pyro, xrayswarm) and 4 of the lava lamp; RMS at 0.01 keeps 23-34 of
them, and 100-174 of the busy clips' 180. The threshold is absolute all the same: footage that
barely changes at the stored size (a slow moire, faint lines on black) collapses to a few frames,
as it should for a GAN that sees it at that size; try thresholds on one genre before a whole library.
Guide: 0.003 drops repeats and holds only, 0.01 also slow drifts, 0.03 keeps clearly different pictures.

A frame is dropped when it is closer than the threshold to the LAST KEPT frame, not to the frame
before it. Against the previous frame, a slow drift (each frame 0.3% away from the one before) would
be dropped all the way, however far it drifts: the store would keep its first picture and lose the
rest. Against the last kept frame, change accumulates until it reaches the threshold, so a drift is
kept at steps of the threshold, a still stretch collapses to its first frame, and a cut is always
kept. The first frame of every source is kept. Only one thumbnail is held: it streams.
"""

import numpy as np

THUMBNAIL_SIDE_PX = 16  # thumbnail blocks per side (fewer for frames smaller than this)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (16, 16, 3) float32 block means in [0, 1] (as many blocks as pixels below 16)."""
    height, width = frame.shape[:2]
    rows, columns = block_starts(height), block_starts(width)
    sums = np.add.reduceat(np.add.reduceat(frame, rows, axis=0, dtype=np.float32), columns, axis=1)  # (16, 16, 3)
    pixels = np.outer(np.diff(rows, append=height), np.diff(columns, append=width))  # (16, 16) pixels per block
    return sums / (255 * pixels[:, :, None]).astype(np.float32)


def block_starts(length_px: int) -> np.ndarray:
    """First pixel of each of (at most) THUMBNAIL_SIDE_PX nearly equal blocks along a side."""
    return np.unique(np.arange(THUMBNAIL_SIDE_PX) * length_px // THUMBNAIL_SIDE_PX)


def thumbnail_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference of two thumbnails, in [0, 1]."""
    return float(np.sqrt(np.square(a - b).mean()))


class NearDuplicateFilter:
    """One source's frames in order: `keep(frame)` says whether it differs enough from the last kept one.

    A threshold of 0 keeps every frame (and computes nothing).
    """

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._last_kept: np.ndarray | None = None  # thumbnail of the last kept frame

    def keep(self, frame: np.ndarray) -> bool:
        if self.threshold <= 0:
            return True
        current = thumbnail(frame)
        if self._last_kept is not None and thumbnail_distance(current, self._last_kept) < self.threshold:
            return False
        self._last_kept = current
        return True
