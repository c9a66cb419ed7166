"""GIF palettes: RGB frames -> 8-bit palette frames, fitted stretch by stretch (`GifQuantizer`)."""

from fractions import Fraction

import av
import numpy as np
from PIL import Image

GIF_MAX_FPS = 50  # players slow GIF frame delays under 2/100 s down to 1/10 s
GIF_PALETTE_SECONDS = 2.0  # a fresh palette is fitted to each stretch of this length
GIF_BUFFER_BYTES = 64 * 2**20  # cap on the RGB frames buffered to fit one GIF palette
GIF_PALETTE_SAMPLE_PX = 16_384  # pixels sampled from a stretch to fit its palette


class GifQuantizer:
    """RGB frames -> 8-bit palette frames, with a palette fitted to every stretch of GIF_PALETTE_SECONDS.

    One global palette cannot serve a clip whose colours change (a training video goes from grey noise
    to full colour); one palette per frame flickers. So frames are buffered per stretch (bounded by
    GIF_BUFFER_BYTES), a median-cut palette is fitted to pixels sampled across the stretch, and each
    frame is mapped to it with Floyd-Steinberg dithering, which hides banding in smooth GAN gradients.
    """

    def __init__(self, rate: Fraction, frame_size_wh):
        width, height = frame_size_wh
        frames_in_buffer = GIF_BUFFER_BYTES // (width * height * 3)
        self.stretch_frames = max(1, min(round(GIF_PALETTE_SECONDS * rate), frames_in_buffer))
        self.buffer: list[np.ndarray] = []
        self.rng = np.random.default_rng(0)

    def quantize(self, frames: np.ndarray) -> list[av.VideoFrame]:
        out = []
        for rgb in frames:
            self.buffer.append(rgb)
            if len(self.buffer) == self.stretch_frames:
                out += self.flush()
        return out

    def flush(self) -> list[av.VideoFrame]:
        if not self.buffer:
            return []
        palette_image, argb = self._fit_palette(self.buffer)
        out = []
        for rgb in self.buffer:
            indices = Image.fromarray(rgb).quantize(palette=palette_image, dither=Image.Dither.FLOYDSTEINBERG)
            out.append(av.VideoFrame.from_ndarray((np.asarray(indices), argb), format="pal8"))
        self.buffer = []
        return out

    def _fit_palette(self, frames: list[np.ndarray]) -> tuple[Image.Image, np.ndarray]:
        pixels = np.stack(frames).reshape(-1, 3)  # (n * H * W, 3)
        side = int(np.sqrt(min(GIF_PALETTE_SAMPLE_PX, len(pixels))))
        sample = pixels[self.rng.choice(len(pixels), side * side, replace=False)].reshape(side, side, 3)
        palette_image = Image.fromarray(sample).quantize(256, method=Image.Quantize.MEDIANCUT, kmeans=1)
        rgb = np.zeros((256, 3), np.uint8)
        colours = np.array(palette_image.getpalette()[: 256 * 3], np.uint8).reshape(-1, 3)
        rgb[: len(colours)] = colours
        argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)  # (256, 4) opaque ARGB
        return palette_image, argb
