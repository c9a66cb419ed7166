"""Render I/O speed: 1080p30 encoding, RGB -> YUV conversion, the encoder thread, and upscaling.

    .venv/bin/python bench/render_io.py               # all parts, ~1-2 minutes on 2 cores
    .venv/bin/python bench/render_io.py --frames 300  # longer encodes, steadier figures

Frames are GAN-like: smooth, slowly drifting 96x96 colour fields with fine texture, upscaled to
1920x1080 with lanczos, played forwards then backwards so that motion stays continuous (what x264
sees from a latent walk). Figures are frames per second and the real-time factor at 30 fps.
"""

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from vjgan.render import video
from vjgan.render.layout import FILTERS, Layout, compose_batch, to_uint8_hwc

FRAME_SIZE_WH = (1920, 1080)
FPS = 30
SAMPLE_PX = 96


def gan_like_samples(n_frames: int, n_samples: int = 1, seed: int = 0) -> torch.Tensor:
    """(T, n, 3, 96, 96) in [-1, 1]: sums of drifting sinusoids plus a little fixed texture."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, SAMPLE_PX), torch.linspace(0, 1, SAMPLE_PX), indexing="ij")
    freqs = torch.rand(n_samples, 3, 6, 2, generator=generator) * 12
    phases = torch.rand(n_samples, 3, 6, generator=generator) * 6.28
    texture = torch.rand(n_samples, 3, SAMPLE_PX, SAMPLE_PX, generator=generator) * 0.3
    speeds = 0.05 * torch.arange(1, 7)  # radians per frame of each sinusoid
    times = torch.arange(n_frames, dtype=torch.float32).view(-1, 1, 1, 1)  # (T, 1, 1, 1)
    angle = (freqs[..., 0, None, None] * xs + freqs[..., 1, None, None] * ys) * 6.28  # (n, 3, 6, 96, 96)
    phase = phases + speeds * times  # (T, n, 3, 6)
    waves = torch.sin(angle + phase[..., None, None])  # (T, n, 3, 6, 96, 96)
    return (waves.mean(dim=3) * 1.5 + texture).clamp(-1, 1)  # (T, n, 3, 96, 96)


def ping_pong_order(n_unique: int, n_frames: int) -> np.ndarray:
    """Frame indices playing n_unique frames forwards, backwards, forwards ... for `n_frames` in all."""
    return np.resize(np.concatenate([np.arange(n_unique), np.arange(n_unique - 2, 0, -1)]), n_frames)


def psnr_db(path: Path, frames: np.ndarray, order: np.ndarray) -> float:
    """PSNR of every 10th decoded frame against what was written (RGB, 8 bit), in the clip's area (DXV pads
    1080 to 1088 lines), an alpha clip shown over black as VJ software composites it."""
    height, width = frames.shape[1:3]
    errors = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 10 == 0:
                rgba = frame.to_ndarray(format="rgba")[:height, :width].astype(np.float32)
                errors.append(np.mean((rgba[..., :3] * rgba[..., 3:] / 255 - frames[order[index]]) ** 2))
    return 10 * np.log10(255**2 / np.mean(errors))


def encode_seconds(path: Path, frames: np.ndarray, order: np.ndarray) -> float:
    started = time.perf_counter()
    with video.open_writer(path, video.WriterOptions(FPS, FRAME_SIZE_WH)) as writer:
        for start in range(0, len(order), 8):
            writer.write(frames[order[start : start + 8]])
    return time.perf_counter() - started


def bench_presets(frames: np.ndarray, n_frames: int, folder: Path) -> None:
    chosen = video.CODECS["h264"]
    print(f"H.264 1080p30 encoding through open_writer ({n_frames} frames; chosen: {chosen.options}):")
    for preset, crf in [("ultrafast", "18"), ("superfast", "18"), ("veryfast", "18"), ("veryfast", "20"), ("faster", "20")]:
        video.CODECS["h264"] = dataclasses.replace(chosen, options={"preset": preset, "crf": crf})
        path = folder / f"{preset}-{crf}.mp4"
        order = ping_pong_order(len(frames), n_frames)
        seconds = encode_seconds(path, frames, order)
        megabits_per_second = path.stat().st_size * 8 / (n_frames / FPS) / 1e6
        print(
            f"  {preset:9s} crf {crf}: {n_frames / seconds:6.1f} frames/s = {n_frames / seconds / FPS:4.2f}x real time, "
            f"{megabits_per_second:5.1f} Mbit/s, PSNR {psnr_db(path, frames, order):5.2f} dB"
        )
    video.CODECS["h264"] = chosen


def bench_conversion(frames: np.ndarray) -> None:
    """RGB -> yuv420p per 1080p frame: swscale (what the writer does) against torch on the CPU."""
    rgb = frames[0]

    def swscale(threads):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG", threads=threads)

    bt709 = torch.tensor([[0.2126, 0.7152, 0.0722], [-0.1146, -0.3854, 0.5], [0.5, -0.4542, -0.0458]])

    def torch_yuv420p():
        planes = torch.from_numpy(rgb).permute(2, 0, 1).float()  # (3, H, W)
        luma = torch.einsum("c,chw->hw", bt709[0] * (219 / 255), planes).add_(16).round_().clamp_(0, 255).byte()
        quarter = F.avg_pool2d(planes[None], 2)[0]  # (3, H/2, W/2)
        chroma = torch.einsum("kc,chw->khw", bt709[1:] * (224 / 255), quarter).add_(128).round_().clamp_(0, 255).byte()
        yuv = np.concatenate([luma.numpy().ravel(), chroma.numpy().ravel()]).reshape(-1, rgb.shape[1])
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p")

    print("RGB -> yuv420p, one 1080p frame:")
    for name, convert in [
        ("swscale, 1 thread (the writer)", lambda: swscale(1)),
        ("swscale, auto threads", lambda: swscale(0)),
        ("torch on the CPU", torch_yuv420p),
    ]:
        convert()
        started = time.perf_counter()
        for _ in range(20):
            convert()
        print(f"  {name:34s} {(time.perf_counter() - started) / 20 * 1000:6.1f} ms")


def bench_encoder_thread(samples: torch.Tensor, n_frames: int, folder: Path) -> None:
    """Compose (lanczos upscale) + quantise + encode, with the encoder on its own thread or inline."""
    print(f"compose + encode, {n_frames} frames (encoder thread vs. the same work on one thread):")
    for threaded in (True, False):
        started = time.perf_counter()
        writer = video.open_writer(folder / "thread.mp4", video.WriterOptions(FPS, FRAME_SIZE_WH))
        encoder = writer._encoder
        for start in range(0, n_frames, 8):
            frames = to_uint8_hwc(
                compose_batch(
                    samples[start % len(samples) : start % len(samples) + 8], Layout("single"), FRAME_SIZE_WH, "lanczos"
                )
            )
            writer.write(frames) if threaded else encoder.encode(frames)
        if threaded:
            writer.close()
        else:
            writer._stop_thread()
            encoder.finish(n_frames)
        seconds = time.perf_counter() - started
        label = "encoder thread" if threaded else "inline"
        print(f"  {label:15s} {n_frames / seconds:6.1f} frames/s = {n_frames / seconds / FPS:4.2f}x real time")


def bench_upscale(samples: torch.Tensor) -> None:
    batch = samples[:8]  # (8, 1, 3, 96, 96)
    bank = gan_like_samples(2, 64, seed=1)  # (2, 64, 3, 96, 96)
    cases = [
        (f"single {name}", lambda name=name: compose_batch(batch, Layout("single"), FRAME_SIZE_WH, name)) for name in FILTERS
    ]
    cases += [
        ("F.interpolate bicubic (ref.)", lambda: F.interpolate(batch[:, 0, :, 21:75], size=FRAME_SIZE_WH[::-1], mode="bicubic")),
        (
            "grid 8x8 lanczos",
            lambda: compose_batch(bank.repeat(4, 1, 1, 1, 1), Layout("grid", rows=8, cols=8), FRAME_SIZE_WH, "lanczos"),
        ),
        ("wall (60 tiles) nearest", lambda: compose_batch(bank.repeat(4, 1, 1, 1, 1), Layout("wall"), FRAME_SIZE_WH, "nearest")),
    ]
    composed = compose_batch(batch, Layout("single"), FRAME_SIZE_WH, "lanczos")  # channels-last in memory
    cases += [
        ("to_uint8_hwc (composed)", lambda: to_uint8_hwc(composed)),
        ("to_uint8_hwc (contiguous)", lambda: to_uint8_hwc(composed.contiguous())),
    ]
    print(f"96x96 -> 1920x1080 on the CPU, batches of 8 ({torch.get_num_threads()} torch threads):")
    for name, run in cases:
        run()
        started = time.perf_counter()
        for _ in range(3):
            run()
        frames_per_second = 3 * 8 / (time.perf_counter() - started)
        print(f"  {name:30s} {frames_per_second:6.1f} frames/s = {1000 / frames_per_second:5.1f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per encoding run")
    args = parser.parse_args()
    samples = gan_like_samples(48)  # (48, 1, 3, 96, 96)
    frames = np.concatenate(
        [
            to_uint8_hwc(compose_batch(samples[i : i + 8], Layout("single"), FRAME_SIZE_WH, "lanczos"))
            for i in range(0, len(samples), 8)
        ]
    )  # (48, 1080, 1920, 3) uint8
    with tempfile.TemporaryDirectory() as folder:
        bench_presets(frames, args.frames, Path(folder))
        bench_conversion(frames)
        bench_encoder_thread(samples, min(args.frames, 96), Path(folder))
    bench_upscale(samples)


if __name__ == "__main__":
    main()
