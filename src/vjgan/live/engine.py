"""The picture side of the live mode: runs on the device, a latent position moved by time, the music and
the parameters, and the renderer's own layouts and effects, one canvas per call.

Everything that shapes a frame is the renderer's: `render.pipeline.LatentRenderer` runs the generator,
`render.layout.compose_batch` lays tiles out, `render.effects.apply_strengths` is the effect chain, and the
motion walks `render.latent`'s curves. So a live frame looks like a rendered clip's with the same settings;
what is live is only that the controls come from the clock, the audio analyser and the parameter store,
read once per frame.

The canvas is planned as a rendered clip's (`plan_composition`): the output size on CUDA, on the CPU a
smaller image the window's shader (or an output's swscale) upscales, because upscaling 1080p in torch on
two cores costs more than a frame's whole budget.
"""

import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjgan.errors import LiveError
from vjgan.live.audio_analysis import TapTempo
from vjgan.live.params import LiveParams
from vjgan.render.effects import EFFECTS, EffectState, apply_strengths
from vjgan.render.latent import AudioMotion, beat_target, ease_in_out_cubic, loop_curve, loop_turn_degrees, slerp, walk_keyframe
from vjgan.render.layout import FILTERS, LAYOUTS, Layout, compose_batch, plan_tiling, to_uint8_hwc
from vjgan.render.pipeline import LatentRenderer, RenderConfig, plan_composition, tile_seeds, torch_threads
from vjgan.run.directory import RunDir

WALK_KEYFRAMES_PER_LOOP = 4  # keyframes the walk passes in loop_seconds at speed 1
BEAT_PULSE_DECAY_SECONDS = 0.15  # time constant of the metronome's pulse (as `render.audio`'s beats), seconds
MAX_STEP_SECONDS = 0.25  # a stall longer than this moves the picture no further than this (no lurch after a hiccup)


@dataclass(frozen=True)
class LiveConfig:
    """What is fixed for a performance: frame rate, output size and where the generator runs."""

    fps: float = 30.0  # frames shown per second
    frame_size_wh: tuple[int, int] = (1920, 1080)  # output (width, height), pixels
    filter: str = "bicubic"  # upscaling filter, as rendered clips: nearest, bilinear, bicubic or lanczos
    canvas_oversample: float = 4.0  # on the CPU: canvas pixels per sample pixel (the window upscales the rest)
    max_tiles: int = 16  # samples a grid or wall shows at most: each is a generator forward every frame
    device: str = "auto"  # "auto" (CUDA, else MPS), "cpu", "cuda" or "mps"
    precision: str = "auto"  # generator arithmetic: "auto" (bf16 where native), "fp32" or "bf16"
    cpu_threads: int = 1  # torch threads of the generator: batch-1 forwards gain nothing from more on 2 cores

    def __post_init__(self):
        object.__setattr__(self, "frame_size_wh", tuple(int(side) for side in self.frame_size_wh))
        self.render_config()  # checks size, fps, filter, device and precision as a rendered clip's
        if not 1 <= self.max_tiles <= 64 or self.cpu_threads < 1:
            raise LiveError("max_tiles must be 1-64 and cpu_threads at least 1")

    def render_config(self) -> RenderConfig:
        if self.filter not in FILTERS:
            raise LiveError(f"filter {self.filter!r}: choose one of {', '.join(FILTERS)}")
        return RenderConfig(
            fps=self.fps,
            frame_size_wh=self.frame_size_wh,
            filter=self.filter,
            canvas_oversample=self.canvas_oversample,
            device=self.device,
            precision=self.precision,
            generator_batch=self.max_tiles,
        )


@dataclass(frozen=True)
class AudioState:
    """The audio controls a frame is made from: `live.audio_analysis`'s features, or silence."""

    time_seconds: float = 0.0
    rms: float = 0.0
    onset: float = 0.0
    low: float = 0.0
    mid: float = 0.0
    high: float = 0.0
    beat: float = 0.0
    onset_count: int = 0
    beat_count: int = 0
    bpm: float | None = None

    @classmethod
    def of(cls, features) -> "AudioState":
        """Any object with the analyser's fields (None = silence)."""
        if features is None:
            return cls()
        return cls(**{name: getattr(features, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LiveFrame:
    """One made frame and what it took: the timings the status and the latency benchmark read."""

    pixels: np.ndarray  # (h, w, 3) uint8: the canvas
    index: int  # frames made so far, from 0
    started_seconds: float  # clock time the frame was begun (controls read)
    finished_seconds: float  # clock time the pixels were ready
    generator_ms: float  # of which the generator's forward passes
    audio: AudioState  # the audio controls it shows
    loop_count: int  # whole loops (or walk segments) travelled: OSC sends a pulse when it steps
    beat_count: int  # metronome or audio beats so far


class Motion:
    """Where the picture is: a position along the seed's loop (turns), its walk (keyframes) and the beat
    clock (beats), advanced by elapsed time, speed and the music. Pure: no generator, no device."""

    def __init__(self, z_dim: int):
        self.z_dim = z_dim
        self.turn_degrees = loop_turn_degrees(z_dim)
        self.turns = 0.0  # along the loop curve (loop and beat motions)
        self.keyframes = 0.0  # along the endless walk
        self.beats = 0.0  # metronome beats
        self.beat_seen = 0  # audio beats handled
        self.onsets_seen = 0  # audio onsets handled
        self.last_jump_seconds = -math.inf
        self.lean_target = 0  # index of the random latent the last beat leans toward
        self.lean_seconds = -math.inf  # when that beat was

    def advance(self, step_seconds: float, now_seconds: float, values: dict, audio: AudioState) -> None:
        motion = AudioMotion()
        push = values["audio_motion"]
        degrees = push * motion.loudness_degrees_per_second * audio.rms * step_seconds
        if audio.onset_count > self.onsets_seen:
            strong = audio.onset >= motion.jump_onset  # the analyser has applied the sensitivity
            if push > 0 and strong and now_seconds - self.last_jump_seconds >= motion.jump_min_gap_seconds:
                degrees += push * motion.jump_degrees
                self.last_jump_seconds = now_seconds
            self.onsets_seen = audio.onset_count
        turns_per_second = values["speed"] / values["loop_seconds"]
        self.turns += turns_per_second * step_seconds + degrees / self.turn_degrees
        self.keyframes += WALK_KEYFRAMES_PER_LOOP * (turns_per_second * step_seconds + degrees / self.turn_degrees)
        beats_before = int(self.beats)
        self.beats += values["bpm"] / 60.0 * step_seconds
        if audio.beat_count > self.beat_seen:  # a heard beat: lean now, and pull the metronome onto it
            self.beat_seen = audio.beat_count
            self.beats = float(round(self.beats))
            self._lean(now_seconds)
        elif int(self.beats) > beats_before and values["motion"] == "beat":
            self._lean(now_seconds)

    def _lean(self, now_seconds: float) -> None:
        self.lean_target += 1
        self.lean_seconds = now_seconds

    def loop_count(self, values: dict) -> int:
        if values["motion"] == "walk":
            return int(self.keyframes // WALK_KEYFRAMES_PER_LOOP)
        if values["motion"] == "beat":
            return int(self.beats // values["beats_per_loop"])
        return int(math.floor(self.turns))

    def latents(self, seeds: list[int], values: dict, now_seconds: float) -> torch.Tensor:
        """(n, z_dim) Gaussian-space latents, one per seed (tile), at the current position."""
        if values["motion"] == "walk":
            segment = math.floor(self.keyframes)
            local = float(ease_in_out_cubic(torch.tensor(self.keyframes - segment)))
            start = torch.stack([walk_keyframe(seed, segment, self.z_dim) for seed in seeds])
            end = torch.stack([walk_keyframe(seed, segment + 1, self.z_dim) for seed in seeds])
            path = slerp(start, end, local)
        else:
            turns = self.beats / values["beats_per_loop"] if values["motion"] == "beat" else self.turns
            path = torch.cat([loop_curve(torch.tensor([turns % 1.0]), self.z_dim, seed).double() for seed in seeds])
        since_beat_seconds = now_seconds - self.lean_seconds
        lean = AudioMotion().beat_pulse * values["audio_motion"] * math.exp(-since_beat_seconds / BEAT_PULSE_DECAY_SECONDS)
        if lean > 1e-3:
            targets = torch.stack([beat_target(seed, self.lean_target, self.z_dim) for seed in seeds])
            path = slerp(path, targets, min(lean, 1.0))
        return path.float()


@dataclass(frozen=True)
class Scene:
    """What a crossfade blends between: a run, a seed and a layout."""

    run: int
    seed: int
    layout: str


class LiveEngine:
    """Loaded runs and the motion, making one frame per `frame()` call (from one thread: the generator's)."""

    def __init__(self, runs: list[Path], config: LiveConfig, params: LiveParams, clock=time.perf_counter):
        if not runs:
            raise LiveError("no runs to play: give one or more run directories")
        self.config, self.params, self.clock = config, params, clock
        render_config = config.render_config()
        self.renderers: list[LatentRenderer] = []
        self.names: list[str] = []
        for run in runs:
            generator, _ = RunDir(Path(run)).load_generator()
            self.renderers.append(LatentRenderer(generator, render_config))
            self.names.append(Path(run).name)
        first = self.renderers[0]
        self.device = first.device
        self.z_dim = first.generator.config.z_dim
        if any(renderer.generator.config.z_dim != self.z_dim for renderer in self.renderers):
            raise LiveError("runs with different latent sizes cannot be crossfaded in one performance; play them apart")
        sample_hw = first.generator.config.size_px
        self.sample_hw = (sample_hw, sample_hw) if isinstance(sample_hw, int) else tuple(sample_hw)
        # One canvas for every layout (planned for `single`, the largest cell), so outputs keep one size.
        single = plan_composition(render_config, Layout("single"), config.max_tiles, self.sample_hw, self.device)
        self.canvas_size_wh = single.canvas_size_wh
        # each layout fitted to the canvas once, and the samples it shows (a frame asks every time)
        self.layouts = {kind: Layout(kind).fitted(config.max_tiles, self.sample_hw, self.canvas_size_wh) for kind in LAYOUTS}
        self.tile_counts = {
            kind: max(plan_tiling(layout, config.max_tiles, self.sample_hw, self.canvas_size_wh).samples) + 1
            for kind, layout in self.layouts.items()
        }
        self.motion = Motion(self.z_dim)
        self.tap = TapTempo().tap  # time -> bpm; the session hands in the audio analyser's, which also locks the beat
        self.effect_state = EffectState(seed=0)
        self.scene: Scene | None = None
        self.fading_from: Scene | None = None
        self.fade_started_seconds = 0.0
        self.held: torch.Tensor | None = None  # the last composed frame before effects: what freeze holds
        self.last_seconds: float | None = None
        self.index = 0

    @torch.no_grad()
    def warm_up(self) -> None:
        """A whole frame per run with every effect on, before the clock starts: first uses pay one-off costs
        (kernel selection, cached grids, the allocator growing) that would otherwise drop the first frames."""
        values = self.params.values()
        with torch_threads(self.config.cpu_threads) if self.device.type == "cpu" else nullcontext():
            for run in range(len(self.renderers)):
                composed, _ = self.compose(Scene(run, values["seed"], values["layout"]), values, self.clock())
                to_uint8_hwc(apply_strengths(composed, {name: np.ones(1) for name in EFFECTS}, EffectState()))

    def layout_of(self, kind: str) -> Layout:
        return self.layouts[kind]

    def tiles(self, layout: Layout) -> int:
        return self.tile_counts[layout.kind]

    def handle_triggers(self, now_seconds: float) -> None:
        for trigger in self.params.take_fired():
            if trigger == "new_seed":
                self.params.set("seed", random.randrange(2**31))
            elif trigger in ("next_run", "prev_run"):
                step = 1 if trigger == "next_run" else -1
                self.params.set("run", (self.params.get("run") + step) % len(self.renderers))
            elif trigger == "tap":
                bpm = self.tap(now_seconds)
                if bpm is not None:
                    self.params.update({"bpm": bpm, "bpm_follow": False})

    @torch.no_grad()
    def frame(self, audio=None) -> LiveFrame:
        """The next frame, from the parameters and audio features as they are now."""
        started = self.clock()
        self.handle_triggers(started)
        audio = AudioState.of(audio)
        values = self.params.values()
        if values["bpm_follow"] and audio.bpm:
            values["bpm"] = self.params.set("bpm", audio.bpm)
        step = 0.0 if self.last_seconds is None else min(MAX_STEP_SECONDS, started - self.last_seconds)
        self.last_seconds = started
        scene = Scene(values["run"], values["seed"], values["layout"])
        if self.scene is not None and scene != self.scene and values["crossfade"] > 0:
            self.fading_from, self.fade_started_seconds = self.scene, started
        self.scene = scene
        generator_seconds = 0.0
        with torch_threads(self.config.cpu_threads) if self.device.type == "cpu" else nullcontext():
            if not values["freeze"] or self.held is None:
                if not values["freeze"]:
                    self.motion.advance(step, started, values, audio)
                composed, generator_seconds = self.compose(scene, values, started)
                fade = (started - self.fade_started_seconds) / values["crossfade"] if self.fading_from else 1.0
                if fade < 1.0:
                    previous, more_seconds = self.compose(self.fading_from, values, started)
                    generator_seconds += more_seconds
                    weight = float(ease_in_out_cubic(torch.tensor(fade)))
                    composed = torch.lerp(previous, composed, weight)
                else:
                    self.fading_from = None
                self.held = composed
            frame = apply_strengths(self.held, self.effect_strengths(values, audio), self.effect_state)
            pixels = to_uint8_hwc(frame)[0]  # (h, w, 3)
        self.index += 1
        return LiveFrame(
            pixels=pixels,
            index=self.index - 1,
            started_seconds=started,
            finished_seconds=self.clock(),
            generator_ms=generator_seconds * 1e3,
            audio=audio,
            loop_count=self.motion.loop_count(values),
            beat_count=int(self.motion.beats) if values["motion"] == "beat" or not audio.beat_count else audio.beat_count,
        )

    def compose(self, scene: Scene, values: dict, now_seconds: float) -> tuple[torch.Tensor, float]:
        """The scene's tiles through its run's generator, laid out on the canvas: (1, 3, H, W), and generator seconds."""
        renderer = self.renderers[scene.run]
        renderer.truncation = values["truncation"]
        layout = self.layout_of(scene.layout)
        seeds = tile_seeds(scene.seed, self.tiles(layout)) if layout.kind != "single" else [scene.seed]
        latents = self.motion.latents(seeds, values, now_seconds)  # (n, z_dim)
        begun = time.perf_counter()
        images = renderer.images(latents)  # (n, 3, h, w)
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        generator_seconds = time.perf_counter() - begun
        return compose_batch(images[None], layout, self.canvas_size_wh, self.config.filter), generator_seconds

    def effect_strengths(self, values: dict, audio: AudioState) -> dict[str, np.ndarray]:
        """Each effect's strength this frame: its fader, or the music through the effect's gate, whichever is more."""
        strengths = {}
        for name, effect in EFFECTS.items():
            control = np.asarray([getattr(audio, effect.signal)], np.float64)
            heard = effect.strength(control, values["intensity"]) if values[f"react_{name}"] else np.zeros(1)
            strength = np.maximum(heard, values[f"fx_{name}"])
            if strength[0] > 0 or name == "trails":  # trails keeps its feedback frame even when off
                strengths[name] = strength
        return strengths


def with_effects_reacting(params: LiveParams, effects: tuple[str, ...]) -> None:
    """Sets which effects the music drives (the CLI's --effects)."""
    params.update({f"react_{name}": name in effects for name in EFFECTS})
