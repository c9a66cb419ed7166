"""The render commands as library calls: each builds its frame source and hands it to `pipeline`.

- `render_progress`: the run's fixed-noise snapshots in training order (the original workflow's video);
- `render_loop` / `render_walk`: a seamless loop / a keyframe walk through the EMA generator's latent space;
  with `BeatOptions`, a loop of whole bars at a tempo that kicks (and flashes, zooms...) on every beat;
- `render_audio`: latent motion and VJ effects driven by a music track, which is muxed in;
- `generate`: many loops from consecutive seeds in one batched pass, plus a contact sheet; run again with the
  same settings (after a full disk, a kill), it renders only the loops not finished (`LoopRecord`).

Every latent clip is a function of its seed alone: loop k of `generate --seed S` is the clip
`render loop --seed S+k` makes. Tiles of a grid or wall each follow their own path, seeded from the
clip's seed (`pipeline.tile_seeds`).
"""

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from vjgan.console import console
from vjgan.device import pick_device
from vjgan.errors import AudioError, RenderError, RunError
from vjgan.files import atomic_path, write_atomic
from vjgan.render import effects
from vjgan.render.audio import AudioControls, analyse
from vjgan.render.latent import EASINGS, AudioMotion, audio_path, beat_loop_controls, beat_loop_path, loop_path, walk_path
from vjgan.render.layout import Layout, expand_snapshots, from_uint8_hwc
from vjgan.render.pipeline import (
    ClipJob,
    Composition,
    FrameHook,
    LatentRenderer,
    RenderConfig,
    first_canvas,
    output_path,
    plan_composition,
    tile_seeds,
    write_clips,
)
from vjgan.run.directory import RunDir
from vjgan.run.snapshots import SnapshotStore

CONTACT_THUMB_WIDTH_PX = 320  # width of each clip's first frame on the contact sheet
CONTACT_LABEL_PX = 16  # height of the seed label under each thumbnail
LOOP_RECORD = "generate.json"  # in generate's folder: the settings its loops were made with, and which are finished

PathOfSeed = Callable[..., torch.Tensor]  # (z_dim=, seed=) -> (T, z_dim) Gaussian-space latents


@dataclass(frozen=True)
class ProgressOptions:
    frames_per_snapshot: int = 1  # output frames each snapshot is shown for
    crossfade: bool = False  # blend into the next snapshot over those frames instead of holding
    from_images: int | None = None  # first snapshot: the first taken at or after this many images seen; None = the first
    to_images: int | None = None  # last snapshot: the last taken at or before this many images seen; None = the last

    def __post_init__(self):
        if self.frames_per_snapshot < 1:
            raise RenderError(f"frames per snapshot {self.frames_per_snapshot}: must be at least 1")


BPM_RANGE = (20.0, 400.0)  # tempi a beat loop accepts, beats per minute
# Effects a loop cannot take: the feedback trail of frame 0 would need the last frame, rendered after it.
EFFECTS_NOT_LOOPING = ("trails",)


@dataclass(frozen=True)
class BeatOptions:
    """A loop locked to the music's clock: whole bars at a tempo, kicking (and flashing...) on every beat.

    A bar's length is rarely a whole number of frames, so the loop gets the nearest whole number and
    its own tempo (`frame_bpm`) differs from `bpm` by that rounding; `describe` says by how much.
    """

    bpm: float  # tempo, beats per minute
    bars: int = 4  # loop length, bars
    beats_per_bar: int = 4  # beats in a bar
    # how far each beat kicks the latent toward a new one (slerp t, 0 = none, 1 = all the way)
    pulse: float = AudioMotion.beat_pulse
    effects: tuple[str, ...] = ()  # VJ effects fired on every beat (names in render.effects.EFFECTS)
    intensity: float = 0.5  # effect strength: a pulse on the beat, softer than `render audio`'s 1

    def __post_init__(self):
        object.__setattr__(self, "effects", tuple(self.effects))
        low, high = BPM_RANGE
        if not (math.isfinite(self.bpm) and low <= self.bpm <= high):
            raise RenderError(f"bpm {self.bpm:g}: must be between {low:g} and {high:g}")
        if self.bars < 1 or self.beats_per_bar < 1:
            raise RenderError(f"bars {self.bars}, beats per bar {self.beats_per_bar}: both must be at least 1")
        if not 0 <= self.pulse <= 1:
            raise RenderError(f"pulse {self.pulse:g}: must be between 0 and 1")
        effects.check_effects(self.effects, self.intensity)
        for name in EFFECTS_NOT_LOOPING:
            if name in self.effects:
                raise RenderError(f"effect {name}: its feedback cannot wrap round a loop's seam; leave it out")

    @property
    def n_beats(self) -> int:
        return self.bars * self.beats_per_bar

    def exact_frames(self, fps: float) -> float:
        """The bars' length in frames, before rounding to a whole frame."""
        return self.n_beats * 60.0 / self.bpm * fps

    def n_frames(self, fps: float) -> int:
        """Frames in the loop: the bars' length rounded to the nearest frame."""
        frames_per_beat = self.exact_frames(fps) / self.n_beats
        if frames_per_beat < 2:
            raise RenderError(
                f"bpm {self.bpm:g} at {fps:g} fps: {frames_per_beat:.2f} frames a beat, too few to tell beats apart; "
                "raise --fps or lower the tempo"
            )
        return round(self.exact_frames(fps))

    def frame_bpm(self, fps: float) -> float:
        """The tempo the loop really has at `fps`: its beats in its whole frames."""
        return self.n_beats * 60.0 * fps / self.n_frames(fps)

    def describe(self, fps: float) -> str:
        """'4 bars at 128 bpm = 225 frames = 7.500 s', with the loop's own tempo and its drift when the
        bars are not a whole number of frames."""
        n_frames = self.n_frames(fps)
        bars = f"{self.bars} bar{'s' if self.bars > 1 else ''}" + (
            f" of {self.beats_per_bar} beats" if self.beats_per_bar != 4 else ""
        )
        text = f"{bars} at {self.bpm:g} bpm = {n_frames} frames = {n_frames / fps:.3f} s"
        drift_frames = abs(n_frames - self.exact_frames(fps))  # per loop, against `bpm`
        if drift_frames > 1e-6:
            text += (
                f" at {fps:g} fps: the loop's own tempo is {self.frame_bpm(fps):.2f} bpm "
                f"(set the deck to it; at {self.bpm:g} bpm it drifts a frame every {1 / drift_frames:.1f} loops)"
            )
        return text


def track_tempo_bpm(track: Path, fps: float) -> float:
    """The tempo of a music file (`render.audio.analyse`), for loops that fit it."""
    tempo_bpm = analyse(Path(track), fps).tempo_bpm
    if tempo_bpm is None:
        raise AudioError(f"{track}: no steady beat found to take a tempo from; give --bpm instead")
    return tempo_bpm


@dataclass(frozen=True)
class LoopOptions:
    seconds: float = 8.0  # length of one cycle of the loop, seconds (unused with `beat`)
    beat: BeatOptions | None = None  # lock the loop to a tempo: whole bars, a kick on every beat


@dataclass(frozen=True)
class WalkOptions:
    seconds: float = 16.0  # length of the walk, seconds
    keyframes: int = 5  # random latents the walk passes through
    easing: str = "cubic"  # "linear", "sine" or "cubic": how the walk slows into each keyframe
    loop: bool = False  # walk back to the first keyframe, so the clip loops

    def __post_init__(self):
        if self.keyframes < 2:
            raise RenderError(f"keyframes {self.keyframes}: a walk needs at least 2")
        if self.easing not in EASINGS:
            raise RenderError(f"easing {self.easing!r}: choose one of {', '.join(EASINGS)}")


# Mirror and kaleidoscope reshape the whole picture; they are there to ask for, not on by default.
DEFAULT_EFFECTS = ("zoom", "trails", "glitch", "rgb_split", "flash")


@dataclass(frozen=True)
class AudioOptions:
    effects: tuple[str, ...] = DEFAULT_EFFECTS  # VJ effects fired by the music (names in render.effects.EFFECTS)
    intensity: float = 1.0  # scales every effect's strength (0 = none, 1 = as designed)
    motion: AudioMotion = AudioMotion()  # how the music moves the latent

    def __post_init__(self):
        object.__setattr__(self, "effects", tuple(self.effects))
        effects.check_effects(self.effects, self.intensity)


def render_progress(
    run_dir: Path, config: RenderConfig = RenderConfig(), options: ProgressOptions = ProgressOptions(), out: Path | None = None
) -> Path:
    """The training-process video: snapshot after snapshot of the fixed noise bank, one per frame by default."""
    run_dir = Path(run_dir)
    path = output_path(config, out, RunDir(run_dir).clips_path / "progress")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    store = RunDir(run_dir).snapshots()
    first, stop = snapshot_range(store, options, run_dir)
    device = pick_device(config.device)
    layout = Layout(config.layout or "grid", sample=config.sample, rows=config.rows, cols=config.cols)
    composition = plan_composition(config, layout, store.bank_size, store.size_px, device)
    n_frames = (stop - first) * options.frames_per_snapshot
    chunks = snapshot_chunks(store, first, stop, composition.n_samples, options, config.chunk_frames, device)
    write_clips(chunks, [ClipJob(path)], n_frames, composition, config)
    return path


def snapshot_range(store: SnapshotStore, options: ProgressOptions, run_dir: Path) -> tuple[int, int]:
    """[first, stop) snapshot indices taken within the asked range of images seen."""
    if len(store) == 0:
        raise RunError(f"{run_dir}: no snapshots yet; train the run first")
    seen = np.asarray(store.images_seen)
    low = -math.inf if options.from_images is None else options.from_images
    high = math.inf if options.to_images is None else options.to_images
    chosen = np.flatnonzero((seen >= low) & (seen <= high))
    if len(chosen) == 0:
        raise RenderError(
            f"{run_dir}: no snapshot between {options.from_images or 0:,} and {options.to_images or 'the end'} images seen; "
            f"its snapshots span {seen[0]:,} to {seen[-1]:,}"
        )
    return int(chosen[0]), int(chosen[-1]) + 1


def snapshot_chunks(
    store: SnapshotStore, first: int, stop: int, n_samples: int, options: ProgressOptions, chunk_frames: int, device
):
    """Per chunk, [(t, n_samples, 3, h, w)] held or crossfaded snapshots, reading only the rows it needs."""
    k = options.frames_per_snapshot
    n_frames = (stop - first) * k
    for start in range(0, n_frames, chunk_frames):
        end = min(start + chunk_frames, n_frames)
        low, high = start // k, min((end - 1) // k + 1, stop - first - 1) + 1  # rows frames [start, end) blend
        rows = from_uint8_hwc(store.frames(first + low, first + high)[:, :n_samples], device)  # (r, n, 3, h, w)
        yield [expand_snapshots(rows, k, options.crossfade, start - low * k, end - low * k)]  # (t, n, 3, h, w)


def open_renderer(run_dir: Path, checkpoint: Path | None, config: RenderConfig) -> tuple[LatentRenderer, int]:
    """The run's EMA generator on the render device, and the run's noise-bank size (a wall's tile limit)."""
    generator, train_config = RunDir(run_dir).load_generator(checkpoint)
    return LatentRenderer(generator, config), train_config.noise_bank_size


def clip_latents(seed: int, n_tiles: int, path_of_seed: PathOfSeed, z_dim: int) -> torch.Tensor:
    """(n_tiles, T, z_dim): the path of each tile of the clip with this seed."""
    return torch.stack([path_of_seed(z_dim=z_dim, seed=tile_seed) for tile_seed in tile_seeds(seed, n_tiles)])


def latent_composition(config: RenderConfig, renderer: LatentRenderer, bank_size: int) -> Composition:
    """A latent clip's layout (single by default: one path fills the frame), one path per tile."""
    layout = Layout(config.layout or "single", rows=config.rows, cols=config.cols)  # `sample` is for snapshots
    return plan_composition(config, layout, bank_size, renderer.generator.config.size_px, renderer.device)


def render_latent_clip(
    renderer: LatentRenderer, bank_size: int, path_of_seed: PathOfSeed, n_frames: int, job: ClipJob, config: RenderConfig
) -> Path:
    composition = latent_composition(config, renderer, bank_size)
    latents = clip_latents(config.seed, composition.n_samples, path_of_seed, renderer.generator.config.z_dim)
    write_clips(renderer.chunks([latents], config.chunk_frames), [job], n_frames, composition, config)
    return job.path


def render_loop(
    run_dir: Path,
    config: RenderConfig = RenderConfig(),
    options: LoopOptions = LoopOptions(),
    checkpoint: Path | None = None,
    out: Path | None = None,
) -> Path:
    """A seamless loop of `options.seconds` (or of `options.beat`'s bars): its first frame follows its last
    as any frame follows the one before (with a beat, as a beat's frame follows the one before it)."""
    n_frames, loop, effects_of_seed = loop_source(options.seconds, options.beat, config)
    path = output_path(config, out, RunDir(run_dir).clips_path / f"loop-{config.seed}")
    renderer, bank_size = open_renderer(run_dir, checkpoint, config)
    return render_latent_clip(renderer, bank_size, loop, n_frames, ClipJob(path, effects=effects_of_seed(config.seed)), config)


def loop_source(
    seconds: float, beat: BeatOptions | None, config: RenderConfig
) -> tuple[int, PathOfSeed, Callable[[int], FrameHook | None]]:
    """A loop's frame count, its path of a seed, and its effects hook for a clip seed: a plain loop of
    `seconds`, or whole bars of `beat` with a metronome's beats driving kicks and effects."""
    if beat is None:
        n_frames = config.n_frames(seconds)
        return n_frames, partial(loop_path, n_frames), lambda seed: None
    n_frames = beat.n_frames(config.fps)
    metronome = beat_loop_controls(n_frames, beat.n_beats, config.fps)
    effect_options = AudioOptions(effects=beat.effects, intensity=beat.intensity)
    return n_frames, partial(beat_loop_path, metronome, beat_pulse=beat.pulse), partial(audio_effects, metronome, effect_options)


def render_walk(
    run_dir: Path,
    config: RenderConfig = RenderConfig(),
    options: WalkOptions = WalkOptions(),
    checkpoint: Path | None = None,
    out: Path | None = None,
) -> Path:
    """A walk through `options.keyframes` random latents, slerped with easing."""
    n_frames = config.n_frames(options.seconds)
    path = output_path(config, out, RunDir(run_dir).clips_path / f"walk-{config.seed}")
    renderer, bank_size = open_renderer(run_dir, checkpoint, config)
    walk = partial(walk_path, n_frames, keyframes=options.keyframes, easing=options.easing, loop=options.loop)
    return render_latent_clip(renderer, bank_size, walk, n_frames, ClipJob(path), config)


def render_audio(
    run_dir: Path,
    track: Path,
    config: RenderConfig = RenderConfig(),
    options: AudioOptions = AudioOptions(),
    checkpoint: Path | None = None,
    out: Path | None = None,
) -> Path:
    """A clip exactly as long as `track`, moving and flashing with it, with the track muxed in as AAC."""
    path = output_path(config, out, RunDir(run_dir).clips_path / f"audio-{config.seed}")
    renderer, bank_size = open_renderer(run_dir, checkpoint, config)
    controls = analyse(Path(track), config.fps)
    music = partial(audio_path, controls, motion=options.motion)
    job = ClipJob(path, audio_path=Path(track), effects=audio_effects(controls, options, config.seed))
    return render_latent_clip(renderer, bank_size, music, controls.n_frames, job, config)


def audio_effects(controls: AudioControls, options: AudioOptions, seed: int) -> FrameHook | None:
    """The effects chain as a pipeline hook, its state (trail, glitch seed) carried across chunks."""
    if not options.effects or options.intensity == 0:
        return None
    state = effects.EffectState(seed=seed)

    def apply_effects(frames: torch.Tensor, start: int) -> torch.Tensor:
        signals = effects.controls_for_frames(controls, start, start + len(frames))
        return effects.apply(frames, signals, options.effects, options.intensity, state)

    return apply_effects


@dataclass(frozen=True)
class GenerateOptions:
    count: int = 8  # loops to make, from consecutive seeds
    seconds: float = LoopOptions.seconds  # length of each loop, seconds (unused with `beat`)
    clips_at_once: int = 4  # loops rendered in one generator pass and encoded side by side
    beat: BeatOptions | None = None  # lock every loop to one tempo and bar length, kicking on every beat

    def __post_init__(self):
        if self.count < 1 or self.clips_at_once < 1:
            raise RenderError(f"count {self.count}, clips at once {self.clips_at_once}: both must be at least 1")


def generate(
    run_dir: Path,
    config: RenderConfig = RenderConfig(),
    options: GenerateOptions = GenerateOptions(),
    checkpoint: Path | None = None,
    out_dir: Path | None = None,
) -> list[Path]:
    """`options.count` loops from seeds config.seed, config.seed + 1, ... and `contact_sheet.png` of their
    first frames, in `out_dir` (default RUN/clips/loops-<first seed>-<last seed>/). Loops an earlier run
    finished with the same settings and weights are kept, not rendered again."""
    seeds = list(range(config.seed, config.seed + options.count))
    out_dir = Path(out_dir) if out_dir is not None else RunDir(run_dir).clips_path / f"loops-{seeds[0]}-{seeds[-1]}"
    paths = [output_path(config, None, out_dir / f"loop-{seed}") for seed in seeds]
    n_frames, loop, effects_of_seed = loop_source(options.seconds, options.beat, config)
    renderer, bank_size = open_renderer(run_dir, checkpoint, config)
    composition = latent_composition(config, renderer, bank_size)
    record = LoopRecord(out_dir / LOOP_RECORD, loop_settings(run_dir, checkpoint, config, options))
    jobs = {seed: ClipJob(path, effects=effects_of_seed(seed)) for seed, path in zip(seeds, paths)}
    z_dim = renderer.generator.config.z_dim
    latents_of = {seed: partial(clip_latents, seed, composition.n_samples, loop, z_dim) for seed in seeds}
    to_make = [seed for seed in seeds if not record.finished(jobs[seed].path)]
    if len(to_make) < len(seeds):
        console.print(f"reused {len(seeds) - len(to_make)} loops made before with these settings", markup=False)
    first_frames = {}
    for group in range(0, len(to_make), options.clips_at_once):
        group_seeds = to_make[group : group + options.clips_at_once]
        chunks = renderer.chunks([latents_of[seed]() for seed in group_seeds], config.chunk_frames)
        made = write_clips(chunks, [jobs[seed] for seed in group_seeds], n_frames, composition, config)
        first_frames.update(zip(group_seeds, made))
        record.add([jobs[seed].path for seed in group_seeds])
    for seed in seeds:
        if seed not in first_frames:  # made by an earlier run: only its first frame is rendered again
            first_frames[seed] = first_canvas(renderer, latents_of[seed](), jobs[seed], composition, config)
    labels = [f"seed {seed}" for seed in seeds]
    write_contact_sheet(out_dir / "contact_sheet.png", [first_frames[seed] for seed in seeds], labels, config.frame_size_wh)
    return paths


def loop_settings(run_dir: Path, checkpoint: Path | None, config: RenderConfig, options: GenerateOptions) -> dict:
    """Everything a generated loop's pixels depend on but its seed (in its name): the render and loop settings,
    and the checkpoint's file (a run trained further has a newer one), as JSON values."""
    source = Path(checkpoint) if checkpoint is not None else RunDir(run_dir).latest_checkpoint()
    stat = source.stat()
    settings = {
        "render": dataclasses.asdict(dataclasses.replace(config, seed=0)),
        "seconds": options.seconds,
        "beat": dataclasses.asdict(options.beat) if options.beat is not None else None,
        "checkpoint": [str(source.resolve()), stat.st_size, stat.st_mtime_ns],
    }
    return json.loads(json.dumps(settings))  # tuples as lists, as they read back


class LoopRecord:
    """`generate.json` in generate's folder: the settings its loops were made with and the names of those
    finished, rewritten (atomically) after each pass. A loop counts as made when it is listed there under
    the same settings and its file is there; a record that does not read, or other settings, makes all anew."""

    def __init__(self, path: Path, settings: dict):
        self.path = path
        self.settings = settings
        try:
            stored = json.loads(path.read_bytes())
            self.names = set(stored["finished"]) if stored["settings"] == settings else set()
        except (OSError, ValueError, KeyError, TypeError):
            self.names = set()

    def finished(self, clip: Path) -> bool:
        return clip.name in self.names and clip.exists()

    def add(self, clips: list[Path]) -> None:
        self.names |= {clip.name for clip in clips}
        content = json.dumps({"settings": self.settings, "finished": sorted(self.names)}, indent=1)
        write_atomic(self.path, content, "generate's record of finished loops")


def write_contact_sheet(path: Path, frames: list[np.ndarray], labels: list[str], frame_size_wh: tuple[int, int]) -> Path:
    """Thumbnails of `frames` (h, w, 3) uint8 (canvases of clips of `frame_size_wh`) in a near-square grid,
    each labelled underneath."""
    width, height = frame_size_wh
    thumb_w = min(CONTACT_THUMB_WIDTH_PX, width)
    thumb_h = max(1, round(height * thumb_w / width))
    cols = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    cell_h = thumb_h + CONTACT_LABEL_PX
    sheet = Image.new("RGB", (cols * thumb_w, rows * cell_h))
    draw = ImageDraw.Draw(sheet)
    for index, (frame, label) in enumerate(zip(frames, labels)):
        left, top = (index % cols) * thumb_w, (index // cols) * cell_h
        sheet.paste(Image.fromarray(frame).resize((thumb_w, thumb_h), Image.Resampling.LANCZOS), (left, top))
        draw.text((left + 4, top + thumb_h + 2), label, fill=(255, 255, 255))
    with atomic_path(path, "the contact sheet") as partial:
        sheet.save(partial, format="PNG")
    return path
