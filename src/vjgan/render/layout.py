"""Samples -> output frames: arrange generated images as single / grid / wall and upscale to the clip size.

Every layout is the same three steps, batched over time on whatever device the images are on:
resample each sample to one cell size, set the cells side by side, then centre the result in the
frame (cropping what overhangs, black where it falls short):

- ``single``: one sample fills the frame, its overhang cropped (a square sample on 16:9 loses top
  and bottom; a 16:9 sample fills it whole): a VJ output should have no dead bars.
- ``grid``: R x C whole samples as large as fit, centred on black: the contact sheet of the original
  workflow, where every sample is seen complete. Where the bars would be thin (a 3x3 grid of 16:9-ish
  samples on 16:9), the grid covers the frame instead, cutting no more than broadcast's action-safe
  margin off the outer samples (see `GRID_MAX_CUT`).
- ``wall``: as many whole-aspect tiles as the bank allows, sized so they cover the frame with no bars;
  the outer tiles are cut by the frame edge.

Samples of any shape work: the cell keeps the sample's aspect, so a 176x96 model tiles a 1920x1080
frame as well as a square one tiles a square frame.

Resampling is separable: per axis a dense (out x in) weight matrix, built once, applied with matmul.
That is exact for every filter (nearest, bilinear, bicubic, lanczos-3; downscaling widens the kernel,
so it antialiases), handles the crop in the same step, and on a CPU is faster than
`F.interpolate` because BLAS beats the per-pixel loops (bench/render_io.py).
"""

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
import torch
import torch.nn.functional as F

from vjgan.errors import RenderError
from vjgan.kernels import keys_cubic

LAYOUTS = ("single", "grid", "wall")
FILTERS = ("nearest", "bilinear", "bicubic", "lanczos")
BICUBIC_A = -0.5  # Keys' cubic with a = -0.5 (Catmull-Rom, as Pillow): sharp without ringing much
LANCZOS_LOBES = 3  # lanczos-3
# Largest fraction of a grid's width or height cut off (half at each edge) to fill the frame instead of
# leaving bars: broadcast's action-safe margin (3.5% a side), which TV overscan hides and VJs design for.
# 16:9 frames: a 3x3 grid of 176x96 samples loses 3%, of 160x96 6.25%; a 3x4 grid of squares keeps its bars.
GRID_MAX_CUT = 0.07
# BT.709 luma weights of R and B (G's is the rest) and limited ("MPEG", TV) range: Y spans 16..235 (219 levels),
# Cb and Cr 16..240 (224) around 128. How the writers tag their streams (`video.av_encoder.add_video_stream`)
# and what swscale is asked for (`video.Scaler`), so both ways of making yuv420p frames give the same picture.
BT709_KR, BT709_KB = 0.2126, 0.0722
LUMA_BLACK, LUMA_LEVELS, CHROMA_LEVELS = 16, 219, 224


AUTO_GRID_SAMPLES = (9, 16, 12)  # an automatic grid's fewest and most samples, and the count it leans to


@dataclass(frozen=True)
class Layout:
    kind: str = "grid"  # "single", "grid" or "wall"
    sample: int = 0  # the sample `single` shows (index into the bank)
    rows: int | None = None  # grid rows; None: chosen by `fitted` to fill the frame
    cols: int | None = None  # grid columns; None: likewise

    def __post_init__(self):
        if self.kind not in LAYOUTS:
            raise RenderError(f"layout {self.kind!r}: choose one of {', '.join(LAYOUTS)}")
        if self.sample < 0 or any(count is not None and count < 1 for count in (self.rows, self.cols)):
            raise RenderError(f"layout {self.kind}: sample must be >= 0, rows and cols >= 1")

    def fitted(self, n_samples: int, sample_hw: tuple[int, int], frame_size_wh: tuple[int, int]) -> "Layout":
        """This layout with the grid's missing rows/cols chosen so the grid's shape best matches the frame's.

        A fixed 3x4 grid of 16:9 samples in a 16:9 frame leaves wide bars; choosing the count per shape
        fills it (3x5 of squares, 3x3 of 16:9 samples in 1920x1080). With one of the two given, the
        other follows from it; with neither, the grid holds 9-16 samples (at most `n_samples`).
        """
        if self.kind != "grid" or (self.rows and self.cols):
            return self
        sample_h, sample_w = sample_hw
        width, height = frame_size_wh
        cells_per_row = (width / sample_w) / (height / sample_h)  # columns per row for a bar-free grid
        if self.rows:
            return dataclasses.replace(self, cols=max(1, round(self.rows * cells_per_row)))
        if self.cols:
            return dataclasses.replace(self, rows=max(1, round(self.cols / cells_per_row)))
        fewest, most, leaning = AUTO_GRID_SAMPLES
        most = max(1, min(most, n_samples))
        shapes = [
            (rows, cols) for rows in range(1, most + 1) for cols in range(1, most + 1) if min(fewest, most) <= rows * cols <= most
        ]
        rows, cols = min(
            shapes, key=lambda rc: (round(abs(math.log(rc[1] / rc[0] / cells_per_row)), 6), abs(rc[0] * rc[1] - leaning))
        )
        return dataclasses.replace(self, rows=rows, cols=cols)

    def samples_needed(self) -> int:
        """How many samples a frame needs from the bank (wall: decided by `wall_grid`)."""
        if self.kind == "grid" and not (self.rows and self.cols):
            raise ValueError("a grid's rows and cols must be chosen (Layout.fitted) before planning")
        return {"single": self.sample + 1, "grid": (self.rows or 0) * (self.cols or 0), "wall": 1}[self.kind]


@dataclass(frozen=True)
class Tiling:
    """Where the samples go: `rows` x `cols` cells of `cell_hw` pixels from `samples` (bank indices)."""

    samples: tuple[int, ...]
    rows: int
    cols: int
    cell_hw: tuple[int, int]


def plan_tiling(layout: Layout, n_samples: int, sample_hw: tuple[int, int], frame_size_wh: tuple[int, int]) -> Tiling:
    """The cells a layout puts in a frame, refusing layouts that need more samples than there are."""
    width, height = frame_size_wh
    sample_h, sample_w = sample_hw
    if layout.samples_needed() > n_samples:
        what = f"sample {layout.sample}" if layout.kind == "single" else f"{layout.rows}x{layout.cols} samples"
        raise RenderError(f"layout {layout.kind}: needs {what}, but there are only {n_samples} samples")
    if layout.kind == "single":
        return Tiling((layout.sample,), 1, 1, (height, width))
    if layout.kind == "grid":
        scales = (width / (layout.cols * sample_w), height / (layout.rows * sample_h))  # output px per sample px
        if min(scales) >= (1 - GRID_MAX_CUT) * max(scales):  # thin bars: cover the frame instead
            cell_hw = cover_cell(layout.rows, layout.cols, sample_hw, frame_size_wh)
        else:
            cell_hw = (math.floor(sample_h * min(scales)), math.floor(sample_w * min(scales)))
        if min(cell_hw) < 1:
            raise RenderError(f"layout grid {layout.rows}x{layout.cols}: does not fit in {width}x{height} pixels")
        return Tiling(tuple(range(layout.rows * layout.cols)), layout.rows, layout.cols, cell_hw)
    rows, cols, cell_hw = wall_grid(n_samples, sample_hw, frame_size_wh)
    return Tiling(tuple(range(rows * cols)), rows, cols, cell_hw)


def wall_grid(n_samples: int, sample_hw: tuple[int, int], frame_size_wh: tuple[int, int]) -> tuple[int, int, tuple[int, int]]:
    """(rows, cols, cell_hw) of the wall with the most tiles (at most `n_samples`) that covers the frame."""
    width, height = frame_size_wh
    sample_h, sample_w = sample_hw
    best = (1, 1, cover_cell(1, 1, sample_hw, frame_size_wh))
    for cols in range(1, n_samples + 1):
        cell_w = math.ceil(width / cols)
        cell_h = max(1, round(cell_w * sample_h / sample_w))
        rows = math.ceil(height / cell_h)
        if rows * cols > n_samples:
            continue
        if rows * cols > best[0] * best[1]:
            best = (rows, cols, (cell_h, cell_w))
    return best


def cover_cell(rows: int, cols: int, sample_hw, frame_size_wh) -> tuple[int, int]:
    """The smallest sample-aspect cell size whose rows x cols cover the frame."""
    width, height = frame_size_wh
    sample_h, sample_w = sample_hw
    scale = max(width / (cols * sample_w), height / (rows * sample_h))
    return math.ceil(sample_h * scale), math.ceil(sample_w * scale)


def compose_batch(images: torch.Tensor, layout: Layout, frame_size_wh: tuple[int, int], filter: str = "bicubic") -> torch.Tensor:
    """(T, n, 3, h, w) samples in [-1, 1] -> (T, 3, H, W) output frames on the same device.

    The result is laid out channels-last in memory (a permuted view of (T, H, W, 3)), so that
    `to_uint8_hwc` needs no transposing copy of the full-size frames.
    """
    if filter not in FILTERS:
        raise RenderError(f"filter {filter!r}: choose one of {', '.join(FILTERS)}")
    n_frames, n_samples, _, sample_h, sample_w = images.shape
    tiling = plan_tiling(layout, n_samples, (sample_h, sample_w), frame_size_wh)
    tiles = images[:, list(tiling.samples)] if tiling.samples != tuple(range(n_samples)) else images
    cells = resize_cover_hwc(tiles, tiling.cell_hw, filter)  # (T, rows * cols, cell_h, cell_w, 3)
    return arrange_centred(cells, tiling.rows, tiling.cols, frame_size_wh).permute(0, 3, 1, 2)


def resize_cover_hwc(images: torch.Tensor, size_hw: tuple[int, int], filter: str) -> torch.Tensor:
    """(..., 3, h, w) -> (..., H, W, 3): scaled to cover H x W, the overhang cropped equally on both sides.

    Width first, then the small (..., h, W, 3) intermediate is made channels-last, so the height pass
    (one matmul over all of W and the channels) writes the big output channels-last directly.
    """
    in_h, in_w = images.shape[-2:]
    out_h, out_w = size_hw
    scale = max(out_h / in_h, out_w / in_w)  # output pixels per input pixel
    weights_y, first_y = used_columns(resample_weights(in_h, out_h, filter, out_h / scale))  # (out_h, used_h)
    weights_x, first_x = used_columns(resample_weights(in_w, out_w, filter, out_w / scale))  # (out_w, used_w)
    weights_y = torch.from_numpy(weights_y).to(images.device, images.dtype)
    weights_x = torch.from_numpy(weights_x).to(images.device, images.dtype)
    used = images[..., first_y : first_y + weights_y.shape[1], first_x : first_x + weights_x.shape[1]]
    wide = (used @ weights_x.T).movedim(-3, -1).contiguous()  # (..., used_h, out_w, 3)
    columns = wide.flatten(-2)  # (..., used_h, out_w * 3)
    return (weights_y @ columns).unflatten(-1, (out_w, 3))  # (..., out_h, out_w, 3)


def used_columns(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights restricted to the input pixels they use (a crop uses only the middle), and the first one's index."""
    used = np.flatnonzero(weights.any(axis=0))
    return np.ascontiguousarray(weights[:, used[0] : used[-1] + 1]), int(used[0])


@lru_cache(maxsize=64)
def resample_weights(in_len: int, out_len: int, filter: str, span: float) -> np.ndarray:
    """(out_len, in_len) float32 weights resampling the centred `span` input pixels to `out_len` pixels.

    Output pixel i samples input position c(i) = (in_len - span) / 2 + (i + 0.5) * span / out_len - 0.5
    (pixel centres, as Pillow and `align_corners=False`). Taps past the image edge are dropped and the
    rest renormalised, as Pillow does, so the result matches `Image.resize`.
    """
    step = span / out_len  # input pixels per output pixel
    centres = (in_len - span) / 2 + (np.arange(out_len) + 0.5) * step - 0.5  # (out_len,)
    weights = np.zeros((out_len, in_len), np.float64)
    rows = np.arange(out_len)
    if filter == "nearest":
        nearest = np.clip(np.floor(centres + 0.5), 0, in_len - 1).astype(np.int64)
        weights[rows, nearest] = 1.0
        return weights.astype(np.float32)
    kernel, support = KERNELS[filter]
    stretch = max(1.0, step)  # downscaling: widen the kernel so it averages (antialiasing)
    radius = math.ceil(support * stretch)
    for offset in range(-radius, radius + 1):
        taps = np.floor(centres).astype(np.int64) + offset  # (out_len,)
        inside = (taps >= 0) & (taps < in_len)
        np.add.at(weights, (rows[inside], taps[inside]), kernel((taps - centres) / stretch)[inside])
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def triangle(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(x), 0.0, None)


def lanczos(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < LANCZOS_LOBES, np.sinc(x) * np.sinc(x / LANCZOS_LOBES), 0.0)


KERNELS = {
    "bilinear": (triangle, 1.0),
    "bicubic": (partial(keys_cubic, a=BICUBIC_A), 2.0),
    "lanczos": (lanczos, float(LANCZOS_LOBES)),
}


def arrange_centred(cells: torch.Tensor, rows: int, cols: int, frame_size_wh: tuple[int, int]) -> torch.Tensor:
    """(T, rows * cols, ch, cw, 3) cells -> (T, H, W, 3): the grid of cells centred in the frame.

    A grid that overhangs (single, wall) is cropped, one that falls short (grid) sits on black (-1);
    `plan_tiling` never makes one that does both. Either way the cells are copied once.
    """
    n_frames, _, cell_h, cell_w, _ = cells.shape
    width, height = frame_size_wh
    grid = cells.unflatten(1, (rows, cols)).transpose(2, 3)  # (T, rows, ch, cols, cw, 3), a view
    grid_h, grid_w = rows * cell_h, cols * cell_w
    if grid_h >= height and grid_w >= width:
        top, left = (grid_h - height) // 2, (grid_w - width) // 2
        return grid.reshape(n_frames, grid_h, grid_w, 3)[:, top : top + height, left : left + width]
    frame = cells.new_full((n_frames, height, width, 3), -1.0)
    top, left = (height - grid_h) // 2, (width - grid_w) // 2
    inner = frame[:, top : top + grid_h, left : left + grid_w]  # (T, grid_h, grid_w, 3), a view
    inner.unflatten(2, (cols, cell_w)).unflatten(1, (rows, cell_h)).copy_(grid)
    return frame


def to_uint8_hwc(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [-1, 1] on any device -> (T, H, W, 3) uint8 numpy, what the writers take.

    Quantised on the device, so only a quarter of the float bytes cross to the host. One pass reads
    the frames in (T, H, W, 3) order, which is their memory order when they come from `compose_batch`.
    """
    scaled = torch.empty(frames.shape[0], *frames.shape[2:], 3, device=frames.device, dtype=frames.dtype)
    torch.mul(frames.permute(0, 2, 3, 1), 127.5, out=scaled)  # (T, H, W, 3)
    quantised = scaled.add_(128).clamp_(0, 255).to(torch.uint8)  # +128 then truncation: round half up
    return quantised.cpu().numpy()


def to_yuv420p(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [-1, 1] on any device, H and W even -> (T, H * 3 // 2, W) uint8 yuv420p numpy.

    What `video.ClipWriter.write` hands straight to the H.264 encoder: on CUDA the 1080p canvas is at the
    output size already, and converting it here, where it is a few kernels, spares the writer thread
    making an RGB frame and swscaling it (4-7.5 ms a 1080p frame on one core, a ceiling of 4.5-8.5x real time).
    Each frame is laid out as PyAV's `VideoFrame.to_ndarray()` gives yuv420p and `from_ndarray` takes it:
    the Y plane (H x W), then U and V (H/2 x W/2 each), flat and one after the other, in rows of W.
    BT.709, limited range, as `video.Scaler` asks of swscale. Chroma is the mean of each 2x2 block: the
    centre siting swscale gives (it averages horizontal pairs and filters vertically with the scaler's
    kernel, centred between the two rows). Rounded half up like `to_uint8_hwc`, from the float values;
    only the uint8 planes (half the bytes of RGB) cross to the host.
    """
    n_frames, _, height, width = frames.shape
    luma_px = height * width
    luma_weights, chroma_weights = yuv_weights(frames.device, frames.dtype)  # (3,), (3, 2)
    luma_mid = LUMA_BLACK + LUMA_LEVELS / 2  # Y of mid grey (x = 0): 125.5
    planes = torch.empty(n_frames, luma_px * 3 // 2, device=frames.device, dtype=torch.uint8)
    luma = frames.permute(0, 2, 3, 1) @ luma_weights  # (T, H, W): reads the frames in their memory order
    luma = luma.add_(luma_mid + 0.5).clamp_(0, 255)  # +0.5, then the uint8 copy truncates: round half up
    planes[:, :luma_px].view(n_frames, height, width).copy_(luma)
    blocks = F.avg_pool2d(frames, 2).permute(0, 2, 3, 1)  # (T, H/2, W/2, 3): each 2x2 block's mean
    chroma = (blocks @ chroma_weights).add_(128 + 0.5).clamp_(0, 255)  # (T, H/2, W/2, 2), rounded likewise
    planes[:, luma_px:].view(n_frames, 2, height // 2, width // 2).copy_(chroma.permute(0, 3, 1, 2))  # U, then V
    return planes.cpu().numpy().reshape(n_frames, height * 3 // 2, width)


@lru_cache(maxsize=8)
def yuv_weights(device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(3,) and (3, 2) weights taking RGB x in [-1, 1] to Y and (Cb, Cr) in 8-bit levels, less mid grey's.
    Cached per device: made once, not uploaded to the GPU every chunk.

    With v = (x + 1) / 2 in [0, 1] and K = (Kr, Kg, Kb), which sums to 1: Y = 16 + 219 K . v
    = 125.5 + 109.5 K . x; Cb = 128 + 224 (v_B - K . v) / (2 (1 - Kb)) = 128 + 56 (x_B - K . x) / (1 - Kb);
    Cr likewise with R and Kr.
    """
    kr, kb = BT709_KR, BT709_KB
    luma = torch.tensor([kr, 1 - kr - kb, kb], dtype=torch.float64)  # (3,) = K
    blue, red = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    cb = (blue - luma) * (CHROMA_LEVELS / 4) / (1 - kb)  # (3,)
    cr = (red - luma) * (CHROMA_LEVELS / 4) / (1 - kr)  # (3,)
    return (luma * LUMA_LEVELS / 2).to(device, dtype), torch.stack([cb, cr], dim=1).to(device, dtype)


def from_uint8_hwc(frames: np.ndarray, device="cpu") -> torch.Tensor:
    """(..., h, w, 3) uint8 (snapshot rows, frame stores) -> (..., 3, h, w) float32 in [-1, 1] on `device`."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return tensor.movedim(-1, -3).float().div(127.5).sub(1)


def blend_schedule(n_snapshots: int, frames_per_snapshot: int, crossfade: bool, start: int = 0, stop: int | None = None):
    """For output frames [start, stop) of the S * K frame progress video: (index_a, index_b, weight_b).

    Frame j shows snapshot j // K, held for K frames, or crossfaded linearly towards the next one
    (the last snapshot is held). Pure, so a chunked renderer asks for its own frame range.
    """
    if frames_per_snapshot < 1:
        raise RenderError(f"frames per snapshot {frames_per_snapshot}: must be at least 1")
    stop = n_snapshots * frames_per_snapshot if stop is None else stop
    frame = np.arange(start, stop)
    index_a = frame // frames_per_snapshot
    index_b = np.minimum(index_a + 1, n_snapshots - 1)
    weight_b = (frame % frames_per_snapshot) / frames_per_snapshot if crossfade else np.zeros(len(frame))
    return index_a, index_b, weight_b.astype(np.float32)


def expand_snapshots(
    snapshots: torch.Tensor, frames_per_snapshot: int, crossfade: bool, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """(S, ...) snapshots -> frames [start, stop) (default all S * K) of their progress video, (t, ...), each
    held or crossfaded per `blend_schedule`. A chunked renderer passes the rows its frames need, with
    `start`/`stop` counted from the first of those rows' frames."""
    index_a, index_b, weight_b = blend_schedule(len(snapshots), frames_per_snapshot, crossfade, start, stop)
    weight = torch.from_numpy(weight_b).to(snapshots.device, snapshots.dtype)
    weight = weight.view(-1, *[1] * (snapshots.ndim - 1))  # (S * K, 1, ...)
    start, end = snapshots[torch.from_numpy(index_a)], snapshots[torch.from_numpy(index_b)]
    return torch.lerp(start, end, weight)
