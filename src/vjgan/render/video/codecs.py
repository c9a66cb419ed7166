"""The clip formats vjgan writes: which codecs exist, which containers hold them, which frame rates fit.

Adding a codec is one row in `CODECS`. Every check here runs before a frame is rendered, so a clip that
cannot be written fails at once with one line saying why (sizes are checked by `vjgan.sizes`).
"""

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vjgan.errors import RenderError


@dataclass(frozen=True)
class VideoCodec:
    """How one `--codec` is encoded: the FFmpeg encoder, the pixel format it is fed, where it may go."""

    encoder: str  # FFmpeg encoder name
    pix_fmt: str  # pixel format of the encoded stream
    formats: tuple[str, ...]  # output formats (containers) that can hold it; the first is the default
    options: dict[str, str] = field(default_factory=dict)  # encoder options
    about: str = ""  # what it is for, shown in --codec's help
    piped: bool = False  # encoded by imageio-ffmpeg's FFmpeg through a pipe: PyAV's FFmpeg lacks the encoder
    block_px: int = 1  # piped codecs: width and height are padded to multiples of this (texture blocks)
    alpha: bool = False  # piped codecs: add an alpha plane (see `pipe_encoder.texture_frames`)


# H.264: `superfast` is the fastest preset that keeps CABAC and the deblocking filter; on 2 CPU cores it
# encodes 1080p30 faster than real time where `veryfast` does not (bench/render_io.py), and crf 18 buys
# back most of the quality difference at a higher bit rate. ProRes 422 HQ is profile 3 of prores_ks.
# HAP and DXV are DXT-compressed textures the GPU decodes, so VJ software scrubs, reverses and speeds them
# freely; they need sides in whole 4x4 blocks, and Resolume wants DXV in multiples of 16.
CODECS = {
    "h264": VideoCodec("libx264", "yuv420p", ("mp4", "mov"), {"preset": "superfast", "crf": "18"}, "plays everywhere"),
    "prores": VideoCodec("prores_ks", "yuv422p10le", ("mov",), {"profile": "3", "vendor": "apl0"}, "ProRes 422 HQ"),
    "hap": VideoCodec(
        "hap", "rgba", ("mov",), {"format": "hap"}, "GPU-decoded, for Resolume, VDMX, TouchDesigner", piped=True, block_px=4
    ),
    "hap_q": VideoCodec(
        "hap", "rgba", ("mov",), {"format": "hap_q"}, "HAP at higher quality, ~1.6x the size", piped=True, block_px=4
    ),
    "hap_alpha": VideoCodec(
        "hap",
        "rgba",
        ("mov",),
        {"format": "hap_alpha"},
        "HAP with alpha = max(R,G,B): black turns transparent, for layering",
        piped=True,
        block_px=4,
        alpha=True,
    ),
    "dxv": VideoCodec("dxv", "rgba", ("mov",), {}, "Resolume DXV", piped=True, block_px=16),
}


@dataclass(frozen=True)
class OutputFormat:
    suffix: str  # file name suffix; "" = a directory
    default_codec: str | None  # codec used when none is asked for; None = the format has its own encoder


FORMATS = {
    "mp4": OutputFormat(".mp4", "h264"),
    "mov": OutputFormat(".mov", "prores"),  # .mov is what VJ software expects ProRes, HAP and DXV in
    "gif": OutputFormat(".gif", None),
    "png": OutputFormat("", None),
}


def resolve_output(path: Path, codec: str | None, fmt: str | None) -> tuple[str, str | None]:
    """The (format, codec) a clip at `path` is written in: the format from the suffix unless given."""
    if fmt is None:
        by_suffix = {spec.suffix: name for name, spec in FORMATS.items()}
        if path.suffix.lower() not in by_suffix:
            raise RenderError(f"{path}: unknown output type {path.suffix!r}; use .mp4, .mov, .gif or a folder for PNG")
        fmt = by_suffix[path.suffix.lower()]
    if fmt not in FORMATS:
        raise RenderError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    suffix = FORMATS[fmt].suffix
    if suffix and path.suffix.lower() != suffix:
        raise RenderError(f"{path}: format {fmt} needs a {suffix} file name")
    codec = codec or FORMATS[fmt].default_codec
    if codec is None:
        return fmt, None
    if codec not in CODECS:
        raise RenderError(f"{path}: unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if fmt not in CODECS[codec].formats:
        containers = " or ".join(FORMATS[name].suffix for name in CODECS[codec].formats)
        raise RenderError(f"{path}: codec {codec} cannot be written as {fmt}; name the file {containers}")
    return fmt, codec


def default_format(codec: str | None) -> str:
    """The format a clip gets when only its codec is known: the codec's first container, else mp4."""
    return CODECS[codec].formats[0] if codec in CODECS else "mp4"


def frame_rate(fps, path: Path) -> Fraction:
    """fps as an exact fraction (30000/1001 stays NTSC-exact), refusing nonsense."""
    try:
        rate = Fraction(fps).limit_denominator(1001)
    except (TypeError, ValueError):
        raise RenderError(f"{path}: frame rate {fps!r} is not a number") from None
    if not 0 < rate <= 1000:
        raise RenderError(f"{path}: frame rate {fps} must be more than 0 and at most 1000")
    return rate
