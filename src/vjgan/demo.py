"""`vjgan demo`: the whole path on procedural footage, within a time budget a 2-core laptop can afford.

Stages, in order: procedural footage in three genres -> frame stores -> one run per genre, the
training budget split evenly between them -> per genre a training-process video, a seamless loop
and an audio-reactive clip on a synthesised track -> an index (contact sheet, curves, README.txt).

Every stage reuses what an earlier demo left, so an interrupted demo (killed, or stopped by a full disk
with one line naming the file) just runs again. Every file is written whole or not at all (`files`,
`render.video`), so what exists is finished. Outputs follow
make's rule: one is reused when it exists and is no older than what it is made from (a clip is newer
than its run's newest checkpoint, ...). A run is done when it has had its share of the budget; a
run cut short gets what is left of its share, and a larger `--minutes` trains further.
"""

import dataclasses
import fnmatch
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vjgan.console import console
from vjgan.device import DEVICES, pick_device
from vjgan.errors import VjganError
from vjgan.evaluate import EvalConfig, evaluate_run, read_report_rows
from vjgan.files import PARTIAL_SUFFIX, atomic_path, write_atomic
from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.store import MANIFEST, FrameStore
from vjgan.footage.synth import SynthConfig, write_synth_footage
from vjgan.model.networks import to_uint8
from vjgan.overrides import with_overrides
from vjgan.plot import line_chart_png
from vjgan.render import clips
from vjgan.render.latent import loop_path
from vjgan.render.music import synth_music
from vjgan.render.pipeline import RenderConfig, torch_threads
from vjgan.run.directory import RunDir
from vjgan.train.config import TrainConfig, preset
from vjgan.train.loop import train

CLIP_KINDS = ("progress", "loop", "audio")
DEMO_STAMP = ".vjgan-demo.json"  # in the demo folder: the profile it is made with
FOOTAGE_STAMP = ".complete"  # in footage/: written when every clip is
TRAINED_STAMP = "demo-trained.json"  # in each run: the training budget it has had, minutes
CONTACT_CELL_PX = 128  # side of each image on the contact sheet
CONTACT_LABEL_PX = 22  # height of the column titles, and width taken by the row labels is 5x this
SNAPSHOT_COLUMNS = {"early": 0.125, "mid": 0.5, "late": 1.0}  # where in the run the contact sheet's snapshots are
LOOP_COLUMNS = 3  # evenly spaced frames of the loop on the contact sheet
REAL_COLUMNS = 3  # store frames on the contact sheet, spread evenly over the store


@dataclass(frozen=True)
class DemoProfile:
    """Sizes and lengths of everything the demo makes, for one kind of machine (the defaults: a CPU).

    The CPU profile was chosen by training candidates on a 2-core CPU for one genre's share of the
    budget (bench/RESULTS.md, "Demo"): a narrow 64x64 `modern` model at a high learning rate and
    without augmentation draws rings and lines of text within two minutes, where the presets' own
    settings or wider models still show texture. `modern2`, the better preset from ~8 minutes on 2 cores
    (issue 15), was screened for this budget too and lost: its own settings collapsed on the demo's geometry
    and its loss at this profile's settings blurred geometry and particles (bench/RESULTS.md). One torch
    thread: on a busy machine two threads ran 10-30x slower (they wait for each other at every one of a small
    model's many short operations).
    """

    synth: SynthConfig = SynthConfig()  # the footage: 3 genres x 3 clips of 4 s at 640x360
    train_preset: str = "modern"  # base training settings (vjgan.train.config.PRESETS)
    # What the next commands advise for one's own footage and an hour of training, where the demo's few
    # minutes want its own settings; None: the demo's preset and width again.
    own_footage_preset: str | None = "modern2"
    size_px: int = 64  # side of the square frames ingested and generated, pixels
    model_width: int | None = 16  # G/D channels at full resolution; None = the preset's
    batch_size: int | None = 16  # images per step; None = the preset's
    lr: float | None = 1e-3  # Adam learning rate; None = the preset's
    augment: str | None = ""  # DiffAugment policy; None = the preset's ("": none, it slows the first minutes' learning)
    snapshot_every_images: int = 500  # images between snapshots: 80-120 per two minutes on a CPU
    checkpoint_every_images: int = 10_000  # images between checkpoints (a stop always checkpoints too)
    log_every_steps: int = 20  # steps between log records: the loss curves' points (~2 s apart on a CPU)
    # The schedule is this x the budget, a little above a quiet 2-core CPU's 440-510 img/s, so the time
    # budget rather than the schedule ends training there and no minute of it is left unused.
    images_per_second: float = 600.0
    train_threads: int | None = 1  # torch's CPU threads while training; None = torch's default
    minutes_total: float = 6.0  # training budget of all genres together when --minutes is not given
    render: RenderConfig = RenderConfig(frame_size_wh=(1280, 720))  # clip size, fps, codec
    progress_seconds: float = 10.0  # length the training-process video aims at, seconds (whole frames per snapshot)
    loop_seconds: float = 8.0  # length of each seamless loop, seconds
    music_seconds: float = 16.0  # length of the synthesised track and of each audio-reactive clip, seconds
    music_bpm: float = 128.0  # tempo of the synthesised track, beats per minute
    eval_points: int = 8  # snapshots SWD is measured at, at most (the newest always; ~1.5 s each on a CPU)
    eval_store_frames: int = 512  # store frames SWD compares each snapshot with

    def train_config(self, store: Path, minutes_total: float, device: str) -> TrainConfig:
        """The run's settings for a training budget of `minutes_total` (this genre's share)."""
        images_total = max(1, round(self.images_per_second * minutes_total * 60))
        return with_overrides(
            preset(self.train_preset, (self.size_px, self.size_px)),
            store=str(Path(store).resolve()),
            model_size_px=(self.size_px, self.size_px),
            model_width=self.model_width,
            batch_size=self.batch_size,
            lr=self.lr,
            augment=self.augment,
            images_total=images_total,
            snapshot_every_images=self.snapshot_every_images,
            checkpoint_every_images=self.checkpoint_every_images,
            log_every_steps=self.log_every_steps,
            device=device,
        )


PROFILES = {
    "cpu": DemoProfile(),
    # The original workflow's full model, at the trainer's target speed on one H100 (not measured yet).
    "gpu": DemoProfile(
        train_preset="seed96",
        own_footage_preset=None,  # the original workflow's model (modern256 has no GPU figures yet)
        size_px=96,
        model_width=None,
        batch_size=None,
        lr=None,
        augment=None,
        snapshot_every_images=20_000,
        checkpoint_every_images=500_000,
        log_every_steps=200,
        images_per_second=20_000.0,
        train_threads=None,
        render=RenderConfig(frame_size_wh=(1920, 1080)),
    ),
    # Checks an installation end to end in well under a minute; the pictures are not the point.
    "smoke": DemoProfile(
        synth=SynthConfig(seconds=0.5, frame_size_wh=(128, 72), clips_per_genre=1),
        size_px=32,
        model_width=8,
        batch_size=16,
        lr=1e-3,
        snapshot_every_images=64,
        log_every_steps=4,
        images_per_second=1000.0,
        render=RenderConfig(frame_size_wh=(192, 108)),
        progress_seconds=1.0,
        loop_seconds=1.0,
        music_seconds=2.0,
        eval_points=2,
        eval_store_frames=32,
        minutes_total=0.15,
    ),
}


@dataclass(frozen=True)
class DemoConfig:
    """What a user chooses; everything else follows from the machine (the profile)."""

    out_dir: Path = Path("vjgan-demo")  # everything the demo makes goes here
    minutes_total: float | None = None  # training budget of all genres together, minutes; None = the profile's
    device: str = "auto"  # "auto" (CUDA, then Apple MPS, when available), "cpu", "cuda" or "mps"; only CUDA gets the GPU profile
    profile: str | None = None  # "cpu", "gpu" or "smoke" (tiny, to check an install); None = "gpu" on CUDA, else "cpu"

    def __post_init__(self):
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.minutes_total is not None and not (math.isfinite(self.minutes_total) and self.minutes_total > 0):
            raise VjganError(f"demo --minutes {self.minutes_total}: give a positive number of minutes")
        if self.device not in DEVICES:
            raise VjganError(f"demo --device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if self.profile is not None and self.profile not in PROFILES:
            raise VjganError(f"demo profile {self.profile!r}: choose one of {', '.join(PROFILES)}")

    def resolve_profile(self) -> DemoProfile:
        if self.profile is not None:
            return PROFILES[self.profile]
        return PROFILES["gpu" if pick_device(self.device).type == "cuda" else "cpu"]


class DemoPaths:
    """Where each thing the demo makes lives under its output folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.footage = self.root / "footage"
        self.data = self.root / "data"
        self.music = self.root / "music.wav"
        self.contact_sheet = self.root / "contact_sheet.png"
        self.curves = self.root / "curves.png"
        self.readme = self.root / "README.txt"

    def store(self, genre: str) -> Path:
        return self.data / genre

    def run(self, genre: str) -> Path:
        return self.root / "runs" / genre

    def clip(self, genre: str, kind: str) -> Path:
        return self.root / "clips" / f"{genre}-{kind}.mp4"


@dataclass(frozen=True)
class DemoResult:
    paths: DemoPaths
    profile: DemoProfile
    clips: dict[str, dict[str, Path]]  # genre -> kind ("progress", "loop", "audio") -> clip
    stage_seconds: dict[str, float]  # wall time of each stage in this demo run
    reused: list[str] = field(default_factory=list)  # what earlier runs had made and this one reused

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())


class Stages:
    """The stage display (a numbered rule per stage, a line for each thing reused) and the stages' times."""

    def __init__(self, total: int):
        self.total = total
        self.seconds: dict[str, float] = {}
        self.reused: list[str] = []
        self._current: tuple[str, float] | None = None

    def start(self, name: str, detail: str) -> None:
        self._close()
        self._current = (name, time.perf_counter())
        console.rule(f"[bold]demo {len(self.seconds) + 1}/{self.total}: {name}[/bold] {detail}", align="left")

    def reuse(self, what: str) -> None:
        self.reused.append(what)
        console.print(f"reused {what} (already made)", style="dim", markup=False)

    def finish(self) -> dict[str, float]:
        self._close()
        return self.seconds

    def _close(self) -> None:
        if self._current is not None:
            name, started = self._current
            self.seconds[name] = time.perf_counter() - started
            self._current = None


def up_to_date(output: Path, *inputs: Path) -> bool:
    """Whether `output` exists and is no older than any of `inputs`: make's rule for reusing it."""
    if not output.exists():
        return False
    made = output.stat().st_mtime_ns
    return all(made >= source.stat().st_mtime_ns for source in inputs)


def run_demo(config: DemoConfig = DemoConfig()) -> DemoResult:
    """Make (or finish making) the whole demo in `config.out_dir`; see the module docstring."""
    profile = config.resolve_profile()
    paths = DemoPaths(config.out_dir)
    claim_folder(paths, profile)
    genres = profile.synth.genres
    stages = Stages(total=3 + 2 * len(genres) + 1)
    stages.start("footage", f"{len(genres)} genres x {profile.synth.clips_per_genre} procedural clips -> {paths.footage}")
    make_footage(paths, profile, stages)
    stages.start("ingest", f"{profile.size_px}x{profile.size_px} frame stores -> {paths.data}")
    make_stores(paths, profile, stages)
    minutes_total = config.minutes_total if config.minutes_total is not None else profile.minutes_total
    minutes_per_genre = minutes_total / len(genres)
    for genre in genres:
        share = f"{minutes_per_genre:.3g} of {minutes_total:g} training minutes"
        stages.start(f"train {genre}", f"{share} -> {paths.run(genre)}")
        train_genre(paths, profile, genre, minutes_per_genre, config.device, stages)
    stages.start("music", f"a {profile.music_seconds:g} s track at {profile.music_bpm:g} bpm -> {paths.music}")
    make_music(paths, profile, stages)
    render = dataclasses.replace(profile.render, device=config.device)
    clip_paths = {}
    for genre in genres:
        stages.start(f"render {genre}", "training video, seamless loop, audio-reactive clip")
        clip_paths[genre] = render_genre(paths, profile, render, genre, stages)
    stages.start("index", f"{paths.contact_sheet.name}, {paths.curves.name}, {paths.readme.name}")
    write_index(paths, profile, render, genres, stages)
    return DemoResult(paths, profile, clip_paths, stages.finish(), stages.reused)


def claim_folder(paths: DemoPaths, profile: DemoProfile) -> None:
    """Mark the folder as this profile's demo; refuse one made with another (its runs could not resume)."""
    stamp = paths.root / DEMO_STAMP
    settings = json.dumps(dataclasses.asdict(profile), sort_keys=True, default=str)
    if stamp.is_file() and stamp.read_text() != settings:
        raise VjganError(
            f"{paths.root}: holds a demo made with other settings (another machine or --smoke); "
            "give another --out, or delete the folder to start over"
        )
    if paths.root.exists() and not paths.root.is_dir():
        raise VjganError(f"{paths.root}: not a folder; give another --out")
    if paths.root.exists() and not stamp.is_file() and any(paths.root.iterdir()):
        raise VjganError(f"{paths.root}: not empty and not a vjgan demo folder; give another --out")
    if not stamp.is_file():
        try:
            paths.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VjganError(f"{paths.root}: cannot write the demo folder ({error.strerror}); give another --out") from None
        write_atomic(stamp, settings, "the demo's settings")


def make_footage(paths: DemoPaths, profile: DemoProfile, stages: Stages) -> None:
    """Procedural clips in footage/<genre>/ (each written whole or not at all), made once; clips finished by an
    interrupted demo are kept."""
    stamp = paths.footage / FOOTAGE_STAMP
    if stamp.is_file():
        return stages.reuse(f"footage in {paths.footage}")
    write_synth_footage(paths.footage, profile.synth, keep_finished=True)
    stamp.touch()


def make_stores(paths: DemoPaths, profile: DemoProfile, stages: Stages) -> None:
    """One frame store per genre; ingest is incremental, and skipped when every store is newer than the footage."""
    footage_stamp = paths.footage / FOOTAGE_STAMP
    manifests = [paths.store(genre) / MANIFEST for genre in profile.synth.genres]
    if all(up_to_date(manifest, footage_stamp) for manifest in manifests):
        return stages.reuse(f"frame stores in {paths.data}")
    report = ingest(paths.footage, paths.data, IngestConfig(size_px=profile.size_px))
    if report.problems:  # the demo's own footage: a problem here is a bug or a broken install, not bad input
        raise VjganError(f"{report.problems[0].message}; the demo's own footage could not be ingested")
    console.print(f"ingested {report.frames_added:,} frames into {len(report.genres)} stores", markup=False)


def trained_minutes(run_dir: Path) -> float:
    """The training budget a run has had: its stamp, or the training time of its newest checkpoint when
    a demo was stopped in the middle of training it."""
    stamp = run_dir / TRAINED_STAMP
    stamped = json.loads(stamp.read_text())["minutes"] if stamp.is_file() else 0.0
    counters = RunDir(run_dir).counters()
    checkpointed = counters.seconds / 60 if counters is not None else 0.0
    return max(stamped, checkpointed)


def train_genre(paths: DemoPaths, profile: DemoProfile, genre: str, minutes: float, device: str, stages: Stages) -> None:
    """Train the genre's run until it has had `minutes` of training (resuming, or training further)."""
    run_dir = paths.run(genre)
    left_minutes = minutes - trained_minutes(run_dir)
    if left_minutes <= 1e-6:
        return stages.reuse(f"run {run_dir} ({minutes:.2g} minutes trained)")
    config = dataclasses.replace(profile.train_config(paths.store(genre), minutes, device), minutes=left_minutes)
    on_cpu = pick_device(device).type == "cpu"
    threads = profile.train_threads if on_cpu and profile.train_threads is not None else torch.get_num_threads()
    with torch_threads(threads):
        result = train(config, run_dir)
    write_atomic(
        run_dir / TRAINED_STAMP, json.dumps({"minutes": minutes, "images_seen": result.images_seen}), "the demo's training stamp"
    )
    console.print(f"{run_dir}: trained on {result.images_seen:,} images", markup=False)


def make_music(paths: DemoPaths, profile: DemoProfile, stages: Stages) -> None:
    if paths.music.is_file():
        return stages.reuse(f"track {paths.music}")
    synth_music(paths.music, profile.music_seconds, profile.music_bpm)  # whole or not at all


def progress_frames_per_snapshot(profile: DemoProfile, n_snapshots: int) -> int:
    """Whole frames per snapshot that bring the training video closest to `progress_seconds`."""
    return max(1, round(profile.progress_seconds * profile.render.fps / n_snapshots))


def render_genre(paths: DemoPaths, profile: DemoProfile, render: RenderConfig, genre: str, stages: Stages) -> dict[str, Path]:
    """The genre's three clips, each remade only when its run has moved on since it was rendered."""
    run_dir = paths.run(genre)
    run = RunDir(run_dir)
    newest = run.latest_checkpoint()
    made = {kind: paths.clip(genre, kind) for kind in CLIP_KINDS}
    if up_to_date(made["progress"], run.snapshot_index_path):
        stages.reuse(f"training video {made['progress']}")
    else:
        k = progress_frames_per_snapshot(profile, len(run.snapshots()))
        options = clips.ProgressOptions(frames_per_snapshot=k, crossfade=k > 1)
        clips.render_progress(run_dir, render, options, out=made["progress"])
    if up_to_date(made["loop"], newest):
        stages.reuse(f"loop {made['loop']}")
    else:
        clips.render_loop(run_dir, render, clips.LoopOptions(seconds=profile.loop_seconds), out=made["loop"])
    if up_to_date(made["audio"], newest, paths.music):
        stages.reuse(f"audio-reactive clip {made['audio']}")
    else:
        clips.render_audio(run_dir, paths.music, render, out=made["audio"])
    return made


def evaluate_genre(paths: DemoPaths, profile: DemoProfile, genre: str) -> list[dict]:
    """SWD of the run's snapshots against its store (eval.json, measured again only after more training)."""
    run = RunDir(paths.run(genre))
    if not up_to_date(run.eval_report_path, run.snapshot_index_path):
        every = max(1, math.ceil(len(run.snapshots()) / profile.eval_points))
        evaluate_run(run.path, EvalConfig(every_nth_snapshot=every, store_frames=profile.eval_store_frames))
    return read_report_rows(run.path)


def write_index(paths: DemoPaths, profile: DemoProfile, render: RenderConfig, genres: tuple[str, ...], stages: Stages) -> None:
    """contact_sheet.png, curves.png and README.txt, remade when any clip or run is newer than them."""
    sources = [paths.clip(genre, kind) for genre in genres for kind in CLIP_KINDS]
    sources += [RunDir(paths.run(genre)).snapshot_index_path for genre in genres]
    index = (paths.contact_sheet, paths.curves, paths.readme)
    if all(up_to_date(output, *sources) for output in index):
        return stages.reuse(f"index in {paths.root}")
    evaluations = {genre: evaluate_genre(paths, profile, genre) for genre in genres}
    save_png(contact_sheet(paths, profile, render, genres), paths.contact_sheet)
    write_curves(paths, genres, evaluations)
    write_readme(paths, profile)


def save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path, "a picture of the demo's index") as partial:
        image.save(partial, format="PNG", optimize=True)


def contact_sheet(paths: DemoPaths, profile: DemoProfile, render: RenderConfig, genres: tuple[str, ...]) -> Image.Image:
    """Rows: genres; columns: real frames, early/mid/late snapshots (the bank's first sample), loop frames."""
    titles = ["real"] * REAL_COLUMNS + list(SNAPSHOT_COLUMNS)
    titles += [f"loop {index * profile.loop_seconds / LOOP_COLUMNS:.3g} s" for index in range(LOOP_COLUMNS)]
    label_w, cell = 5 * CONTACT_LABEL_PX, CONTACT_CELL_PX
    sheet = Image.new("RGB", (label_w + len(titles) * cell, CONTACT_LABEL_PX + len(genres) * cell), "black")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for column, title in enumerate(titles):
        draw.text((label_w + column * cell + cell / 2, CONTACT_LABEL_PX / 2), title, fill="white", font=font, anchor="mm")
    for row, genre in enumerate(genres):
        top = CONTACT_LABEL_PX + row * cell
        images, images_seen = contact_row(paths, profile, render, genre)  # (columns, h, w, 3) uint8
        draw.text((8, top + cell / 2 - 10), genre, fill="white", font=font, anchor="lm")
        draw.text((8, top + cell / 2 + 10), f"{images_seen:,} images", fill="gray", font=font, anchor="lm")
        for column, image in enumerate(images):
            thumb = Image.fromarray(image).resize((cell, cell), Image.Resampling.BICUBIC)
            sheet.paste(thumb, (label_w + column * cell, top))
    return sheet


def contact_row(paths: DemoPaths, profile: DemoProfile, render: RenderConfig, genre: str) -> tuple[np.ndarray, int]:
    """One genre's contact-sheet images (REAL + snapshot + LOOP columns, h, w, 3) uint8, and its images seen."""
    store = FrameStore.open(paths.store(genre))
    spread = (np.arange(REAL_COLUMNS) + 0.5) / REAL_COLUMNS  # the middle of each of REAL_COLUMNS equal parts
    real = store.frames_at((spread * len(store)).astype(np.int64))  # (REAL, h, w, 3)
    run = RunDir(paths.run(genre))
    snapshots = run.snapshots()
    rows = [max(0, math.ceil(fraction * len(snapshots)) - 1) for fraction in SNAPSHOT_COLUMNS.values()]
    shots = np.stack([snapshots.frames(row, row + 1)[0, 0] for row in rows])  # (3, h, w, 3): sample 0 of each
    trained_images = run.counters().images_seen  # the loop's weights
    return np.concatenate([real, shots, loop_frames(run.path, profile, render)]), trained_images


def loop_frames(run_dir: Path, profile: DemoProfile, render: RenderConfig) -> np.ndarray:
    """Evenly spaced frames of the genre's loop clip, made again by its generator at the model's size:
    (LOOP_COLUMNS, h, w, 3) uint8. The latents are the clip's own (same seed, same path)."""
    renderer, _ = clips.open_renderer(run_dir, None, render)
    n_frames = render.n_frames(profile.loop_seconds)
    z_dim = renderer.generator.config.z_dim
    path = clips.clip_latents(render.seed, 1, partial(loop_path, n_frames), z_dim)[0]  # (T, z_dim), the clip's one tile
    chosen = path[torch.arange(LOOP_COLUMNS) * n_frames // LOOP_COLUMNS]  # (LOOP_COLUMNS, z_dim)
    return to_uint8(renderer.images(chosen)).cpu().numpy()


def write_curves(paths: DemoPaths, genres: tuple[str, ...], evaluations: dict[str, list[dict]]) -> None:
    """curves.png: every genre's D and G losses (log.jsonl) above its SWD at the snapshots (eval.json)."""
    losses, swd = {}, {}
    for genre in genres:
        log = RunDir(paths.run(genre)).read_log()
        seen = [record["images_seen"] for record in log]
        losses[f"{genre} D"] = (seen, [record["d_loss"] for record in log])
        losses[f"{genre} G"] = (seen, [record["g_loss"] for record in log])
        rows = evaluations[genre]
        swd[genre] = ([row["images_seen"] for row in rows], [row["swd_x1e3"] for row in rows])
    with tempfile.TemporaryDirectory() as folder:
        charts = [
            line_chart_png(Path(folder) / "loss.png", losses, "training losses per genre", "images seen", "loss"),
            line_chart_png(
                Path(folder) / "swd.png",
                swd,
                "SWD of the snapshots vs the real frames",
                "images seen",
                "SWD x 1e3 (lower is better)",
                log_y=True,
            ),
        ]
        images = [Image.open(chart).convert("RGB") for chart in charts]
    stacked = Image.new("RGB", (max(image.width for image in images), sum(image.height for image in images)), "white")
    for index, image in enumerate(images):
        stacked.paste(image, (0, sum(other.height for other in images[:index])))
    save_png(stacked, paths.curves)


def file_descriptions(profile: DemoProfile) -> list[tuple[str, str]]:
    """(pattern relative to the demo folder, one-line description), first match wins."""
    width, height = profile.render.frame_size_wh
    size = f"{width}x{height}, {profile.render.fps:g} fps, H.264"
    synth_w, synth_h = profile.synth.frame_size_wh
    return [
        ("README.txt", "this list"),
        ("contact_sheet.png", "rows: genres; columns: real frames, early/mid/late snapshots, frames of the loop"),
        ("curves.png", "training losses (top) and SWD against the real frames (bottom, lower is better)"),
        (
            "music.wav",
            f"the track the audio clips dance to ({profile.music_seconds:g} s of drums and bass at {profile.music_bpm:g} bpm)",
        ),
        ("clips/*-progress.mp4", f"training-process video: the fixed noise bank as the model learnt ({size})"),
        ("clips/*-loop.mp4", f"seamless {profile.loop_seconds:g} s loop through the model's latent space ({size})"),
        ("clips/*-audio.mp4", f"audio-reactive clip with music.wav muxed in ({profile.music_seconds:g} s, {size})"),
        ("footage/*/*.mp4", f"procedural footage: the training data ({synth_w}x{synth_h}, a {profile.synth.seconds:g} s loop)"),
        ("data/*/manifest.json", "frame store manifest: the store's settings and one entry per source clip"),
        ("data/*/*.npy", f"frame store shard: one source clip's frames ({profile.size_px}x{profile.size_px}, uint8)"),
        ("runs/*/config.toml", "every training setting of the run"),
        ("runs/*/log.jsonl", "losses and speed, one JSON record per logging step"),
        ("runs/*/noise_bank.safetensors", "the fixed latent vectors every snapshot renders"),
        ("runs/*/checkpoints/*", "checkpoint (weights, optimiser and random state): render from it, or train on"),
        ("runs/*/snapshots/frames.u8", "the fixed noise bank rendered as training went: the training video's frames"),
        ("runs/*/snapshots/index.json", "how many snapshots frames.u8 holds, and the images seen at each"),
        ("runs/*/preview.png", "the newest snapshot as a grid"),
        ("runs/*/loss.png", "the run's losses"),
        ("runs/*/eval.json", "SWD and diversity at the measured snapshots"),
        ("runs/*/swd.png", "the run's SWD curve per pyramid level"),
        ("runs/*/diversity.png", "the run's diversity against the real frames'"),
        (f"runs/*/{TRAINED_STAMP}", "the training budget the demo gave the run (re-running trains only beyond it)"),
    ]


def describe(relative: str, descriptions: list[tuple[str, str]]) -> str:
    return next((text for pattern, text in descriptions if fnmatch.fnmatch(relative, pattern)), "")


def write_readme(paths: DemoPaths, profile: DemoProfile) -> None:
    """README.txt: every file of the demo with one line each, then the commands for one's own footage."""
    descriptions = file_descriptions(profile)
    files = sorted(
        path.relative_to(paths.root).as_posix()
        for path in paths.root.rglob("*")
        if path.is_file()
        and not path.name.endswith(PARTIAL_SUFFIX)  # a killed writer's leftover, not a file of the demo
        and not any(part.startswith(".") for part in path.relative_to(paths.root).parts)
    )
    files = sorted(set(files) | {paths.readme.name}, key=lambda name: (name.count("/") > 0, name))
    width = max(len(name) for name in files)
    lines = ["vjgan demo: GAN-dreamed VJ clips from procedural footage, made by `vjgan demo`.", ""]
    lines += [f"{name:<{width}}  {describe(name, descriptions)}".rstrip() for name in files]
    lines += ["", "Next, with your own footage (one folder of videos per genre):", ""]
    lines += [f"  {command}" for command in next_commands(profile)]
    write_atomic(paths.readme, "\n".join(lines) + "\n", "the demo's README")


def next_commands(profile: DemoProfile) -> list[str]:
    """The commands a user types to do what the demo did with their own footage."""
    if profile.own_footage_preset is not None:
        model = f" --preset {profile.own_footage_preset} --size {profile.size_px}"
    else:
        model = f" --preset {profile.train_preset} --size {profile.size_px}"
        model += f" --width {profile.model_width}" if profile.model_width is not None else ""
    width, height = profile.render.frame_size_wh
    return [
        f"vjgan ingest MY_FOOTAGE --out data --size {profile.size_px}    # MY_FOOTAGE/<genre>/*.mp4, *.mov, ...",
        f"vjgan train data/GENRE --run runs/GENRE{model} --minutes 60    # re-run to resume",
        "vjgan render progress runs/GENRE --crossfade --frames-per-snapshot 4",
        f"vjgan render loop runs/GENRE --seconds 8 --size {width}x{height} --codec prores    # .mov for VJ software",
        "vjgan render audio runs/GENRE --audio MY_TRACK.mp3",
        "vjgan generate runs/GENRE --count 8    # eight loops and a contact sheet",
    ]
