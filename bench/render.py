"""Render speed: real-time factor of `render loop` and `render audio` at 1080p30 H.264, frames/s of `generate`.

    .venv/bin/python bench/render.py                 # ~10 s clips, stage timings, then RESULTS.md
    .venv/bin/python bench/render.py --seconds 4     # quicker
    .venv/bin/python bench/render.py --no-write      # print only

A `seed96` generator (96x96, z 100, width 64) with random weights stands in for a trained one: the
arithmetic is the same. The run is written to a temporary folder.
"""

import argparse
import dataclasses
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from vjgan.model.networks import Generator
from vjgan.render import clips, effects, video
from vjgan.render.audio import analyse
from vjgan.render.latent import loop_path
from vjgan.render.layout import compose_batch, to_uint8_hwc, to_yuv420p
from vjgan.render.music import synth_music
from vjgan.render.pipeline import LatentRenderer, RenderConfig, available_cores
from vjgan.run.checkpoint import module_tensors, write_checkpoint
from vjgan.train.config import TrainConfig, config_to_dict

FRAME_SIZE_WH = (1920, 1080)
FPS = 30
OUTPUT_STD = 0.6  # spread of the stand-in generator's pixel values, as a trained seed96's in [-1, 1]


# What py-spy showed and what was done about it (first measured on the loaded machine: render loop 0.78x,
# render audio 0.07x real time at 1080p).
PROFILE_NOTES = [
    "Profile (py-spy) and what came of it:",
    "- Composing at 1080p in torch (upscale ~20 ms, quantise ~13 ms a frame) and the effects at 1080p (30-100 ms "
    "each, ~250 ms for the default five) were most of the time. On the CPU the pipeline now composes and runs the "
    "effects on a canvas of 4 pixels per sample pixel (384x216 for one 96 px sample in 1080p; 1 per pixel for "
    "`--filter nearest`) and the writer thread's swscale upscales it while converting to yuv420p (~1 ms). On CUDA "
    "the canvas stays the output size. The price: effect edges (glitch bands) are softer on the CPU.",
    "- The generator: bf16 autocast (native AVX512-BF16 here; `--precision auto`) and channels_last are ~2x fp32 "
    "NCHW; batches of 32 latents (4 clips at once in `generate`) beat 8 by ~15%.",
    "- Two torch threads spin-waited for each other while x264 held a core: one torch thread per two cores "
    "(`RenderConfig.cpu_threads`) cut CPU time ~20% and wall time ~10% for audio clips.",
    "- Left: the first `analyse` in a process costs ~3 s (librosa/numba compiling), outside the per-frame path.",
]


def seed96_run(folder: Path) -> Path:
    """A run directory holding one checkpoint of a freshly initialised seed96 generator, its last layer
    scaled so that pictures have a trained model's contrast (DCGAN's init alone gives flat grey, which
    the encoder would compress for free)."""
    config = TrainConfig()
    generator = Generator(config.model).eval()
    with torch.no_grad():
        picture_std = generator(torch.rand(16, config.model.z_dim) * 2 - 1).std()
        generator.blocks[-1].weight.mul_(OUTPUT_STD / picture_std)
    write_checkpoint(
        folder, module_tensors("G_ema", generator), {"config": config_to_dict(config), "counters": {"images_seen": 0}}
    )
    return folder


def timed(function, repeats: int = 3) -> float:
    """Seconds per call, best of `repeats` after one warm-up call; on CUDA until the device has finished
    (its kernels run after the call returns)."""

    def call():
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def stage_timings(run_dir: Path, config: RenderConfig, track: Path) -> list[str]:
    """Milliseconds per 1080p frame of each pipeline stage (chunks of `config.chunk_frames`), on the CPU
    canvas the pipeline uses and, for comparison, composed at the full output size."""
    lines = [f"| stage, per frame (chunks of {config.chunk_frames}) | canvas {{}} | full 1920x1080 |", "| --- | ---: | ---: |"]
    renderer, bank_size = clips.open_renderer(run_dir, None, config)
    chunk = config.chunk_frames
    latents = loop_path(chunk, renderer.generator.config.z_dim, seed=0)  # (t, z_dim)
    for precision in ("fp32", "bf16"):
        timed_renderer = LatentRenderer(renderer.generator, dataclasses.replace(config, precision=precision))
        lines.append(f"| generator, {precision} | {timed(lambda: timed_renderer.images(latents)) / chunk * 1000:.1f} | |")
    samples = renderer.images(latents)[:, None]  # (t, 1, 3, 96, 96)
    canvas = clips.latent_composition(config, renderer, bank_size)
    full = clips.latent_composition(dataclasses.replace(config, canvas_oversample=0), renderer, bank_size)
    lines[0] = lines[0].format("{}x{}".format(*canvas.canvas_size_wh))

    def per_frame(function) -> str:
        return f"{timed(function) / chunk * 1000:.1f}"

    def compose(composition):
        return compose_batch(samples, composition.layout, composition.canvas_size_wh, config.filter)

    frames = {name: compose(composition) for name, composition in [("canvas", canvas), ("full", full)]}
    lines.append(f"| compose ({config.filter}) | {per_frame(lambda: compose(canvas))} | {per_frame(lambda: compose(full))} |")
    controls = analyse(track, FPS)
    busy = {
        name: values[:chunk] * 0 + 1 for name, values in effects.controls_for_frames(controls, 0, chunk).items()
    }  # all firing
    for name in effects.EFFECTS:
        cells = [per_frame(lambda: effects.apply(frames[size], busy, [name])) for size in ("canvas", "full")]
        lines.append(f"| effect {name} (firing) | {cells[0]} | {cells[1]} |")
    pixels = {size: to_uint8_hwc(frames[size]) for size in frames}
    lines.append(
        f"| to uint8 | {per_frame(lambda: to_uint8_hwc(frames['canvas']))} | {per_frame(lambda: to_uint8_hwc(frames['full']))} |"
    )
    scaler = video.Scaler(config.frame_size_wh, config.filter)
    swscale_ms = {
        size: timed(lambda: [scaler.video_frame(rgb, "yuv420p") for rgb in pixels[size]]) / chunk * 1000
        for size in ("canvas", "full")
    }
    lines.append(
        f"| RGB frame + swscale to 1080p yuv420p (writer thread) | {swscale_ms['canvas']:.1f} | {swscale_ms['full']:.1f} |"
    )
    return lines + yuv420p_timings(frames["full"], swscale_ms["full"])


def yuv420p_timings(frames, swscale_ms: float) -> list[str]:
    """The GPU render's way for full-size frames: converted to yuv420p where they are composed (here on the
    CPU; a few kernels on CUDA), so the writer thread only wraps the planes in a frame; and each way's ceiling
    on one clip's writer thread (before x264), set by that thread's per-frame work."""
    chunk = len(frames)
    planes = to_yuv420p(frames)
    to_planes_ms = timed(lambda: to_yuv420p(frames)) / chunk * 1000
    wrap_ms = timed(lambda: [video.yuv420p_frame(frame) for frame in planes]) / chunk * 1000

    def ceiling(ms: float) -> str:
        return f"{ms:.1f} ms a frame, at most {1000 / ms:.0f} frames/s = {1000 / ms / FPS:.1f}x real time at {FPS} fps"

    return [
        f"| to yuv420p planes in torch (the CUDA path; timed on {frames.device.type}) | | {to_planes_ms:.1f} |",
        f"| yuv420p planes to a frame (writer thread, CUDA path) | | {wrap_ms:.1f} |",
        "",
        f"Writer thread per 1080p frame before x264: RGB frame + swscale {ceiling(swscale_ms)}; "
        f"yuv420p planes from the device {ceiling(wrap_ms)}.",
    ]


def measured(render) -> tuple[float, float]:
    """(wall seconds, process CPU seconds: every thread, the encoders' included) of one call."""
    cpu_before, started = cpu_seconds(), time.perf_counter()
    render()
    return time.perf_counter() - started, cpu_seconds() - cpu_before


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each rendered clip")
    parser.add_argument("--count", type=int, default=4, help="loops for the generate figures")
    parser.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    args = parser.parse_args()
    start_load = ", ".join(f"{value:.1f}" for value in os.getloadavg())  # before this bench loads the machine
    config = RenderConfig(frame_size_wh=FRAME_SIZE_WH, fps=FPS)
    cores = available_cores()
    header = [
        f"| command (30 fps, H.264) | video | wall s | CPU s | real time (wall) | real time if CPU-bound on {cores} cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        run_dir = seed96_run(folder / "run")
        track = synth_music(folder / "track.mp3", seconds=args.seconds, bpm=128)
        lines = stage_timings(run_dir, config, track)
        print("\n".join(lines))

        def row(name: str, render, video_seconds: float, what: str) -> str:
            wall, cpu = measured(render)
            per_cpu = video_seconds / (cpu / cores)
            return f"| {name} | {what} | {wall:.1f} | {cpu:.1f} | **{video_seconds / wall:.2f}x** | {per_cpu:.2f}x |"

        seconds = f"{args.seconds:g} s 1080p"
        results = [
            row(
                "render loop",
                lambda: clips.render_loop(run_dir, config, clips.LoopOptions(args.seconds), out=folder / "loop.mp4"),
                args.seconds,
                seconds,
            ),
            row(
                "render audio (default effects; analysis included)",
                lambda: clips.render_audio(run_dir, track, config, out=folder / "audio.mp4"),
                args.seconds,
                seconds,
            ),
        ]
        for size in (FRAME_SIZE_WH, (1280, 720)):
            for at_once in (1, args.count):
                options = clips.GenerateOptions(count=args.count, seconds=args.seconds / 2, clips_at_once=at_once)
                sized = dataclasses.replace(config, frame_size_wh=size)
                n_frames = args.count * sized.n_frames(options.seconds)
                wall, cpu = measured(lambda: clips.generate(run_dir, sized, options, out_dir=folder / "batch"))
                results.append(
                    f"| generate {args.count} x {options.seconds:g} s, {at_once} at once | {n_frames} frames {size[1]}p | "
                    f"{wall:.1f} | {cpu:.1f} | **{n_frames / wall:.1f} frames/s** | {n_frames / (cpu / cores):.1f} frames/s |"
                )
        print("\n".join(header + results))

    if not args.no_write:
        from results import write_section

        write_section(
            "Render",
            [
                f"`bench/render.py --seconds {args.seconds:g}`: a seed96 generator (random weights) through the whole pipeline "
                f"(generator -> canvas compose -> effects -> uint8 -> writer thread: swscale upscale + H.264). "
                f"Measured {time.strftime('%Y-%m-%d')}, {platform.machine()}, {available_cores()} cores (torch renders on half), "
                f"load average at the start {start_load}"
                + (
                    ": a machine shared with other jobs, so wall times swing 2-4x from run to run; "
                    if float(start_load.split(",")[0]) > 1.5
                    else ": otherwise idle; "
                )
                + "the CPU-bound column (video seconds per the process's CPU seconds, all threads, shared out over the cores) "
                + "is the steadier figure. "
                "Targets: >= 1.0x real time at 1080p30 on 2 CPU cores, >= 10x on one GPU (not measured: no GPU was lent to "
                "this task; on CUDA the canvas is the output size and H.264 frames leave the device as yuv420p planes, so a "
                "clip's writer thread only wraps them before x264, not 4-7.5 ms of RGB frame + swscale a 1080p frame: see the "
                "ceilings under the stage table; `generate` encodes several clips side by side).",
                "",
                *header,
                *results,
                "",
                *lines,
                "",
                *PROFILE_NOTES,
            ],
        )


if __name__ == "__main__":
    main()
