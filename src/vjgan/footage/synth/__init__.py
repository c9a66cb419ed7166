"""Procedural VJ footage: the demo's built-in dataset, and footage for tests and benchmarks.

Three genres that a GAN can tell apart: `particles` (glowing points with trails), `geometry`
(zooming polygon rings, tunnels, mandalas) and `typo` (kinetic typography). Each genre has
several styles; clip k of a genre uses style (seed + k) and draws its palette and motion from
its own seeded generator, so a GAN sees a genre rather than one clip.

Every motion is a periodic function of the loop phase (0 -> 2 pi over the clip) with whole
numbers of cycles per clip, so each clip loops seamlessly and the same seed gives the same frames.
Frames are drawn as linear light, given a glow and tone-mapped (`light.py`); one module per genre.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjgan.console import make_progress
from vjgan.errors import FootageError
from vjgan.footage.synth import geometry, particles, typo
from vjgan.footage.synth.light import Clip, add_glow, neon_palette, tone_map
from vjgan.render.video import WriterOptions, open_writer
from vjgan.sizes import check_frame_size

GENRES = ("particles", "geometry", "typo")
STYLES = {"particles": particles.STYLES, "geometry": geometry.STYLES, "typo": typo.STYLES}


@dataclass(frozen=True)
class SynthConfig:
    seconds: float = 4.0  # length of each clip (and of its seamless loop), seconds
    frame_size_wh: tuple[int, int] = (640, 360)  # frame size, (width, height) pixels
    fps: int = 30  # frames per second
    seed: int = 0  # picks styles, palettes, motion and words; same seed -> same frames
    clips_per_genre: int = 3  # clips in each genre folder, each with its own style and palette
    genres: tuple[str, ...] = GENRES  # genre folders to write, from GENRES

    def __post_init__(self):
        check_frame_size(self.frame_size_wh)  # what the H.264 writer can encode
        if self.fps < 1 or self.clips_per_genre < 1 or self.seed < 0:
            raise FootageError(
                f"synth: fps ({self.fps}) and clips per genre ({self.clips_per_genre}) must be >= 1, seed ({self.seed}) >= 0"
            )
        if not math.isfinite(self.seconds) or self.n_frames < 2:
            raise FootageError(f"synth: {self.seconds} s at {self.fps} fps is less than two frames; give more seconds")
        unknown = sorted(set(self.genres) - set(GENRES))
        if unknown or not self.genres:
            raise FootageError(f"synth genres {list(self.genres)}: choose from {', '.join(GENRES)}")

    @property
    def n_frames(self) -> int:
        return round(self.seconds * self.fps)


def write_synth_footage(out_dir: Path, config: SynthConfig = SynthConfig(), keep_finished: bool = False) -> list[Path]:
    """Write `clips_per_genre` H.264 mp4 clips into `out_dir/<genre>/` for each genre; return their paths.

    Clips go through the render stage's writer: encoded on its own thread while the next frames
    are drawn, and renamed into place only when complete, so an interrupted run never leaves a
    truncated clip that ingest would take for footage. `keep_finished` keeps the clips already
    there instead of writing them again (for a caller that knows they were made with `config`,
    like the demo resuming after a kill or a full disk).
    """
    out_dir = Path(out_dir)
    jobs = [(genre, k) for genre in config.genres for k in range(config.clips_per_genre)]
    paths = []
    with make_progress() as progress:
        task = progress.add_task("synth", total=len(jobs) * config.n_frames)
        for genre, k in jobs:
            style = clip_style(genre, k, config.seed)
            path = out_dir / genre / f"{genre}-{k + 1:02d}-{style.__name__.removeprefix('render_')}.mp4"
            progress.update(task, description=f"synth {path.parent.name}/{path.name}")
            paths.append(path)
            if keep_finished and path.is_file():
                progress.advance(task, config.n_frames)
                continue
            with open_writer(path, WriterOptions(config.fps, config.frame_size_wh, codec="h264")) as writer:
                for frame in render_clip(genre, k, config):
                    writer.write(frame[None])  # (1, H, W, 3)
                    progress.advance(task)
    return paths


def clip_style(genre: str, clip_index: int, seed: int) -> Callable:
    """The style renderer of clip `clip_index`: consecutive clips cycle through the genre's styles."""
    styles = STYLES[genre]
    return styles[(seed + clip_index) % len(styles)]


def render_clip(genre: str, clip_index: int, config: SynthConfig) -> Iterator[np.ndarray]:
    """The clip's frames, (H, W, 3) uint8 RGB each, rendered lazily one at a time."""
    # The generator depends on the genre's fixed number, not its place in config.genres, so a
    # clip is the same whichever other genres are written with it.
    rng = np.random.default_rng([config.seed, GENRES.index(genre), clip_index])
    clip = Clip(config.frame_size_wh, config.n_frames, config.seconds, neon_palette(rng))
    draw_frame, glow_gain = clip_style(genre, clip_index, config.seed)(clip, rng)
    for i in range(clip.n_frames):
        phase = 2 * math.pi * i / clip.n_frames
        yield tone_map(add_glow(draw_frame(phase), glow_gain))  # (3, H, W) float32 -> (H, W, 3) uint8
