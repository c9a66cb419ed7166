"""The one streaming pipeline every rendered clip goes through, and the settings it shares.

    samples, a chunk of frames at a time         (snapshot rows, or latents through the generator)
      -> layout + upscale onto the canvas        (on the device, batched)
      -> effects -> uint8                        (on the canvas)
      -> writer thread: swscale to the output size and pixel format, encoder

The canvas is the output size on CUDA and a smaller image on the CPU (see `plan_composition`). On CUDA,
H.264 clips skip the writer's swscale: the frames leave the device as yuv420p (see `write_clips`).
Nothing holds a whole clip: the latent paths are (T, z_dim) numbers (7 MB for 10 minutes), frames
exist only `chunk_frames` at a time and the writers queue a couple of chunks, so a 10-minute 1080p
render needs the memory of a few chunks. Several clips can share one pass (`generate`, the tiles of
a grid): one generator forward per chunk serves them all.
"""

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjgan.console import FramesPerSecondColumn, make_progress
from vjgan.device import DEVICES, PRECISIONS, autocast, autocast_dtype, pick_device
from vjgan.errors import RenderError
from vjgan.model.networks import Generator, latent_from_gaussian
from vjgan.render import video
from vjgan.render.layout import FILTERS, LAYOUTS, Layout, compose_batch, plan_tiling, to_uint8_hwc, to_yuv420p
from vjgan.sizes import check_frame_size

MAX_TRUNCATION = 3.0  # beyond ~3 standard deviations the generator's output is noise whatever the run


@dataclass(frozen=True)
class RenderConfig:
    """How a clip looks and is written; shared by every render command and `generate`."""

    fps: float = 30.0  # output frames per second
    frame_size_wh: tuple[int, int] = (1280, 720)  # output (width, height), pixels
    layout: str | None = None  # "single", "grid" or "wall"; None = grid for `progress`, single for latent clips
    rows: int | None = None  # grid rows; None: as many as best fill the frame (with cols, 9-16 samples)
    cols: int | None = None  # grid columns; None: likewise
    sample: int = 0  # the noise-bank sample `single` shows in `progress`
    filter: str = "bicubic"  # upscaling filter: nearest (crisp pixels), bilinear, bicubic or lanczos
    codec: str | None = (
        None  # a `video.CODECS` name (h264, prores, hap, ...); None = the format's own (h264 for mp4, prores for mov)
    )
    fmt: str | None = None  # "mp4", "mov", "gif" or "png"; None = the output name's, else mov for prores, else mp4
    seed: int = 0  # seed of the latent paths; each tile of a grid or wall derives its own from it
    # Latent spread (the truncation trick, as StyleGAN's psi, for latent clips): 1 = the training
    # distribution; below 1 pulls every latent towards the centre, where the model is surest (cleaner,
    # tamer, less varied pictures); above 1 pushes out into what the model rarely saw (wilder, glitchier).
    truncation: float = 1.0
    chunk_frames: int = 8  # frames rendered at once (8 full-size 1080p canvases in float32 = 200 MB)
    generator_batch: int = 256  # latents per generator forward at most (bounds its activations)
    canvas_oversample: float = 4.0  # on the CPU: canvas pixels per sample pixel (see `plan_composition`); 0 = output size
    cpu_threads: int | None = None  # torch's CPU threads while rendering; None = half the cores (see `write_clips`)
    device: str = "auto"  # "auto" (CUDA, else MPS, when available), "cpu", "cuda" or "mps"
    precision: str = "auto"  # generator arithmetic: "auto" (bf16 where native), "fp32" or "bf16"

    def __post_init__(self):
        object.__setattr__(self, "frame_size_wh", tuple(int(side) for side in self.frame_size_wh))
        check_frame_size(self.frame_size_wh)
        video.frame_rate(self.fps, Path("--fps"))
        if self.layout is not None and self.layout not in LAYOUTS:
            raise RenderError(f"layout {self.layout!r}: choose one of {', '.join(LAYOUTS)}")
        if self.filter not in FILTERS:
            raise RenderError(f"filter {self.filter!r}: choose one of {', '.join(FILTERS)}")
        if self.codec is not None and self.codec not in video.CODECS:
            raise RenderError(f"codec {self.codec!r}: unknown; choose one of {', '.join(video.CODECS)}")
        if self.fmt is not None and self.fmt not in video.FORMATS:
            raise RenderError(f"format {self.fmt!r}: unknown; choose one of {', '.join(video.FORMATS)}")
        if self.device not in DEVICES:
            raise RenderError(f"device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise RenderError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.seed < 0:
            raise RenderError(f"seed {self.seed}: must be 0 or more")
        if not 0 <= self.truncation <= MAX_TRUNCATION:
            raise RenderError(f"truncation {self.truncation:g}: must be between 0 and {MAX_TRUNCATION:g} (1 = as trained)")
        if min(self.chunk_frames, self.generator_batch, self.cpu_threads or 1) < 1 or self.canvas_oversample < 0:
            raise RenderError("chunk_frames, generator_batch and cpu_threads must be at least 1, canvas_oversample at least 0")

    def n_frames(self, seconds: float) -> int:
        """Frames in `seconds` of video: the duration is n_frames / fps exactly."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise RenderError(f"seconds {seconds}: must be a positive number")
        n_frames = round(seconds * self.fps)
        if n_frames < 2:
            raise RenderError(f"seconds {seconds}: shorter than two frames at {self.fps:g} fps")
        return n_frames


def output_path(config: RenderConfig, out: Path | None, default_stem: Path) -> Path:
    """Where a clip goes: `out`, or `default_stem` + the suffix of the chosen format; checked now, not
    after rendering. The format is `config.fmt`, else the name's, else the codec's (mov for ProRes, HAP, DXV), else mp4."""
    if out is None:
        fmt = config.fmt or video.default_format(config.codec)
        out = default_stem.with_name(default_stem.name + video.FORMATS[fmt].suffix)
    video.resolve_output(Path(out), config.codec, config.fmt)
    return Path(out)


def tile_seeds(seed: int, n_tiles: int) -> list[int]:
    """One path seed per tile of a clip: independent streams, so no two tiles or clips repeat each other."""
    return [int(np.random.SeedSequence([seed, tile]).generate_state(1)[0]) for tile in range(n_tiles)]


@dataclass(frozen=True)
class Composition:
    """How samples become a frame: the layout, how many samples it shows (the first `n_samples` of a bank,
    or as many latent paths), and the canvas they are composed on and effects run at."""

    layout: Layout
    n_samples: int
    canvas_size_wh: tuple[int, int]


def plan_composition(
    config: RenderConfig, layout: Layout, bank_size: int, sample_hw: tuple[int, int], device: torch.device
) -> Composition:
    """The canvas: on CUDA, the output size; on the CPU, the output scaled down to `canvas_oversample`
    canvas pixels per sample pixel (1 for nearest, so crisp pixels are resampled once) where that is
    smaller. The writer's swscale then upscales the canvas while converting it to YUV, for ~1 ms a 1080p
    frame, where upscaling and quantising 1080p frames in torch costs ~35 ms on 2 cores (bench/render.py).
    A wall shows as many samples as cover the frame, at most `bank_size`.
    """
    layout = layout.fitted(bank_size, sample_hw, config.frame_size_wh)
    width, height = config.frame_size_wh
    cell_h, cell_w = plan_tiling(layout, bank_size, sample_hw, config.frame_size_wh).cell_hw
    output_per_sample_px = max(cell_h / sample_hw[0], cell_w / sample_hw[1])
    oversample = 1.0 if config.filter == "nearest" else config.canvas_oversample
    shrink = 1.0 if device.type == "cuda" or oversample == 0 else min(1.0, oversample / output_per_sample_px)
    canvas_size_wh = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    n_samples = max(plan_tiling(layout, bank_size, sample_hw, canvas_size_wh).samples) + 1
    return Composition(layout, n_samples, canvas_size_wh)


class LatentRenderer:
    """A generator on a device: Gaussian-space latents in, display-range images out, in bounded batches."""

    def __init__(self, generator: Generator, config: RenderConfig):
        self.device = pick_device(config.device)
        # channels_last: oneDNN's and cuDNN's faster convolution layout (seed96 on 2 CPU cores: ~1.3x)
        self.generator = generator.to(self.device, memory_format=torch.channels_last).eval().requires_grad_(False)
        self.latent = generator.config.latent
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        self.batch = config.generator_batch
        self.truncation = config.truncation

    @torch.no_grad()
    def images(self, gaussian: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) Gaussian-space latents -> (B, 3, h, w) float32 in [-1, 1] on the device."""
        outputs = []
        for part in gaussian.to(self.device).split(self.batch):
            z = latent_from_gaussian(part * self.truncation, self.latent)  # (b, z_dim) in the model's own distribution
            with autocast(self.device, self.amp_dtype):
                outputs.append(self.generator(z).float())  # (b, 3, h, w); seed96 is unbounded
        return torch.cat(outputs).clamp_(-1, 1)

    def chunks(self, latents: Sequence[torch.Tensor], chunk_frames: int) -> Iterator[list[torch.Tensor]]:
        """Per clip (n_tiles_i, T, z_dim) paths -> per chunk, one (t, n_tiles_i, 3, h, w) tensor per clip.

        All clips' tiles of a chunk go through the generator together: one batch of sum(n_i) x t latents.
        """
        tiles_per_clip = [len(paths) for paths in latents]
        stacked = torch.cat(list(latents))  # (P, T, z_dim), P = all tiles of all clips
        for start in range(0, stacked.shape[1], chunk_frames):
            part = stacked[:, start : start + chunk_frames]  # (P, t, z_dim)
            images = self.images(part.reshape(-1, part.shape[-1]))  # (P * t, 3, h, w)
            images = images.unflatten(0, part.shape[:2]).transpose(0, 1)  # (t, P, 3, h, w)
            yield list(images.split(tiles_per_clip, dim=1))


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to `count` for the block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


FrameHook = Callable[[torch.Tensor, int], torch.Tensor]  # (t, 3, H, W) composed frames, first frame index -> same


@dataclass(frozen=True)
class ClipJob:
    """One output of a pass: where it goes, what is muxed in, what is done to its composed frames."""

    path: Path
    audio_path: Path | None = None  # muxed as AAC, cut or padded to the video's duration
    effects: FrameHook | None = None  # e.g. the audio-driven VJ effects


def write_clips(
    chunks: Iterable[list[torch.Tensor]],
    jobs: Sequence[ClipJob],
    n_frames: int,
    composition: Composition,
    config: RenderConfig,
    yuv_on_device: bool | None = None,
) -> list[np.ndarray]:
    """Stream per-clip sample chunks (t, n, 3, h, w) through layout, effects and the writers.

    A writer that takes yuv420p (H.264, the canvas at the output size) is handed frames converted where
    they were composed (`to_yuv420p`) when `yuv_on_device`, by default when that is CUDA: the writer
    thread's RGB frame and swscale cost 4-7.5 ms a 1080p frame, a ceiling of 4.5-8.5x real time per clip,
    where the GPU converts in a few memory-bound kernels and the thread only wraps the planes (~0.5 ms;
    bench/render.py). On the CPU the canvas is small and swscale
    scaling it is cheaper than converting 1080p in torch, so RGB stays the default there (True forces
    the conversion on any device, for tests).

    All clips are written concurrently (each writer encodes on its own thread), so one generator pass
    feeds them all. Returns each clip's first canvas (h, w, 3) uint8, for contact sheets. A failure
    discards every clip of the pass: no file that looks finished is left half-written.

    torch gets half the CPU cores by default and the encoders the rest: on 2 cores, one torch thread
    renders 1080p audio clips ~10% faster than two, on 20% less CPU time, because two torch threads
    spin-wait for each other while x264 holds a core (bench/render.py). Clips encoded side by side
    share the cores: 4 H.264 encoders of one thread each on 2 cores give ~8% more frames/s than 4
    that each start threads for all cores.
    """
    first_frames: list[np.ndarray | None] = [None] * len(jobs)
    with ExitStack() as stack:
        stack.enter_context(torch_threads(config.cpu_threads or max(1, available_cores() // 2)))
        writers = [
            stack.enter_context(
                video.open_writer(
                    job.path,
                    video.WriterOptions(
                        config.fps,
                        config.frame_size_wh,
                        config.codec,
                        config.fmt,
                        job.audio_path,
                        source_size_wh=composition.canvas_size_wh,
                        scale_filter=config.filter,
                        encoder_threads=0 if len(jobs) == 1 else max(1, available_cores() // len(jobs)),
                        announce_padding=index == 0,
                    ),
                )
            )
            for index, job in enumerate(jobs)
        ]
        progress = stack.enter_context(make_progress(FramesPerSecondColumn()))
        name = jobs[0].path.name if len(jobs) == 1 else f"{len(jobs)} clips"
        task = progress.add_task(f"rendering {name}", total=n_frames * len(jobs))
        start = 0
        for samples_per_clip in chunks:
            for index, (job, writer, samples) in enumerate(zip(jobs, writers, samples_per_clip)):
                frames = compose_frames(samples, job, composition, config, start)  # (t, 3, h, w)
                if first_frames[index] is None:
                    first_frames[index] = to_uint8_hwc(frames[:1])[0]  # (h, w, 3)
                if writer.takes_yuv420p and (frames.device.type == "cuda" if yuv_on_device is None else yuv_on_device):
                    pixels = to_yuv420p(frames)  # (t, H * 3 // 2, W) uint8 on the host, ready for the encoder
                else:
                    pixels = to_uint8_hwc(frames)  # (t, h, w, 3) uint8 on the host; the writer scales it to the output
                writer.write(pixels)
                progress.advance(task, len(pixels))
            start += len(samples_per_clip[0])
        if start != n_frames:
            raise RenderError(f"{jobs[0].path}: rendered {start} frames where {n_frames} were planned")
    return first_frames


def compose_frames(
    samples: torch.Tensor, job: ClipJob, composition: Composition, config: RenderConfig, start: int
) -> torch.Tensor:
    """One clip's chunk of samples (t, n, 3, h, w), frames `start`.. of the clip, laid out on the canvas with the
    clip's effects: (t, 3, H, W)."""
    frames = compose_batch(samples, composition.layout, composition.canvas_size_wh, config.filter)  # (t, 3, H, W)
    return job.effects(frames, start) if job.effects is not None else frames


def first_canvas(
    renderer: LatentRenderer, latents: torch.Tensor, job: ClipJob, composition: Composition, config: RenderConfig
) -> np.ndarray:
    """The first canvas of the latent clip of `latents` (n_tiles, T, z_dim), as `write_clips` returns it, without
    rendering the rest: (H, W, 3) uint8, for the contact sheet of clips made by an earlier run."""
    samples = next(renderer.chunks([latents[:, :1]], 1))[0]  # (1, n_tiles, 3, h, w)
    return to_uint8_hwc(compose_frames(samples, job, composition, config, 0))[0]  # (H, W, 3)
