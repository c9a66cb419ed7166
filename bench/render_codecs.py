"""VJ codecs: encoding speed and bit rate of HAP, HAP Q, HAP Alpha and DXV against H.264 and ProRes at 1080p30.

    .venv/bin/python bench/render_codecs.py               # 300 frames per codec, ~1-2 minutes on 2 cores
    .venv/bin/python bench/render_codecs.py --frames 90   # quicker

The frames are bench/render_io.py's GAN-like 1080p frames, played back and forth, written through
`render.video.open_writer` as a render would (encoder thread; HAP and DXV through imageio-ffmpeg's FFmpeg).
CPU seconds include the FFmpeg child's, so they hold steadier than wall time on a shared machine.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from render_io import FPS, FRAME_SIZE_WH, gan_like_samples, ping_pong_order, psnr_db
from results import cpu_seconds

from vjgan.render import video
from vjgan.render.layout import Layout, compose_batch, to_uint8_hwc

CODECS = ["h264", "prores", "hap", "hap_q", "hap_alpha", "dxv"]


def bench_codec(codec: str, frames: np.ndarray, order: np.ndarray, folder: Path) -> str:
    path = folder / f"{codec}.{video.default_format(codec)}"
    started, cpu_started = time.perf_counter(), cpu_seconds()
    with video.open_writer(path, video.WriterOptions(FPS, FRAME_SIZE_WH, codec=codec)) as writer:
        for start in range(0, len(order), 8):
            writer.write(frames[order[start : start + 8]])
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    n_frames = len(order)
    megabits_per_second = path.stat().st_size * 8 / (n_frames / FPS) / 1e6
    return (
        f"| {codec} | {n_frames / seconds:.1f} | {n_frames / seconds / FPS:.2f}x | {n_frames / cpu:.1f} | "
        f"{megabits_per_second:.0f} | {psnr_db(path, frames, order):.2f} dB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per codec")
    parser.add_argument("--codecs", default=",".join(CODECS), help="comma-separated")
    args = parser.parse_args()
    samples = gan_like_samples(48)  # (48, 1, 3, 96, 96)
    frames = np.concatenate(
        [
            to_uint8_hwc(compose_batch(samples[i : i + 8], Layout("single"), FRAME_SIZE_WH, "lanczos"))
            for i in range(0, len(samples), 8)
        ]
    )  # (48, 1080, 1920, 3) uint8
    order = ping_pong_order(len(frames), args.frames)
    print(f"| 1080p30, {args.frames} frames | frames/s | real time | frames per CPU s | Mbit/s | PSNR (RGB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for codec in args.codecs.split(","):
            print(bench_codec(codec, frames, order, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
