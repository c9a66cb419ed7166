"""Real media made at test time with PyAV: tiny videos in any codec/container/pixel format."""

from pathlib import Path

import av
import numpy as np


def gradient_frames(n_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Moving colour gradients with a frame-number-dependent bar, so every frame differs. (N, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        r = (xs / max(width - 1, 1) * 255 + i * 7 + base[0]) % 256
        g = (ys / max(height - 1, 1) * 255 + i * 3 + base[1]) % 256
        b = np.full_like(xs, (base[2] + i * 11) % 256)
        bar = (xs >= (i * 5) % width) & (xs < (i * 5) % width + max(width // 8, 1))
        b[bar] = 255 - b[bar]
        frames[i] = np.stack([r, g, b], axis=-1).astype(np.uint8)
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict | None = None,
    rotation: int | None = None,
    timestamps_seconds: list[float] | None = None,
    container_options: dict | None = None,
) -> Path:
    """Encode `frames` (N, H, W, 3) uint8 RGB to `path`.

    `timestamps_seconds` gives each frame its own presentation time (variable frame rate);
    `rotation` writes a display matrix (degrees counter-clockwise, as `VideoFrame.rotation` reads it)
    on the stream; `container_options` go to the muxer (e.g. {"movflags": "faststart"}).
    """
    path = Path(path)
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if timestamps_seconds is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if timestamps_seconds is not None:
                frame.pts = int(round(timestamps_seconds[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
