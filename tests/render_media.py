"""Reading back what the render commands wrote (with PyAV and Pillow), for the render and generate tests."""

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vjgan.cli import main


@dataclass
class Decoded:
    frames: np.ndarray  # (N, H, W, 3) uint8
    fps: float
    seconds: float  # the video stream's duration
    codec: str
    pix_fmt: str
    audio_codec: str | None
    audio_seconds: float | None


def decode_clip(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        audio = container.streams.audio[0] if container.streams.audio else None
        return Decoded(
            frames=frames,
            fps=float(stream.average_rate),
            seconds=float(stream.duration * stream.time_base) if stream.duration else len(frames) / float(stream.average_rate),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            audio_codec=audio.codec_context.name if audio else None,
            audio_seconds=float(audio.duration * audio.time_base) if audio else None,
        )


def read_png_frames(folder: Path) -> np.ndarray:
    """A PNG-frames render as (N, H, W, 3) uint8, in frame order."""
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(Path(folder).glob("frame_*.png"))])


def vjgan(capsys, *args) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, what it printed on stderr)."""
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr().err


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames, in 8-bit levels: (N - 1,)."""
    signed = frames.astype(np.int16)
    return np.abs(np.diff(signed, axis=0)).mean(axis=(1, 2, 3))


def is_seamless(frames: np.ndarray, noise_levels: float = 0.5) -> bool:
    """The change from the last frame back to the first is like the changes beside it: at most twice the
    larger of the last and first steps, plus `noise_levels` of rounding (or coding) noise. Measured against
    the steps beside the seam, not the clip's average, because a GAN's picture changes faster in some
    stretches of latent space than in others even when the latent moves at constant speed."""
    changes = frame_changes(frames)
    seam = frame_changes(frames[[-1, 0]])[0]
    return seam <= 2 * max(changes[0], changes[-1]) + noise_levels


def compose(images, layout, frame_size_wh: tuple[int, int], filter: str = "bicubic"):
    """(n, 3, h, w) samples -> one (3, H, W) frame: the renderer's batched composition for one frame."""
    from vjgan.render.layout import compose_batch

    return compose_batch(images[None], layout, frame_size_wh, filter)[0]
