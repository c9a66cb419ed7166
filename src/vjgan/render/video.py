"""Clip writers: every rendered frame leaves vjgan through here, as H.264 mp4, ProRes, HAP or DXV mov, GIF or PNG frames.

A clip is streamed, never held whole: `ClipWriter.write` hands a chunk of frames to an encoder thread
through a queue of at most `QUEUE_CHUNKS` chunks, so a 10-minute 1080p render needs the memory of a few
chunks, and the generator/compositor keeps working while the encoder (which releases the GIL) runs.
Frame timing is exact: frame i has pts i in a time base of 1/fps, so n frames last exactly n / fps;
an audio track is re-encoded to AAC and cut or padded with silence to that same duration.

Video files are written to `<name>.partial` (`files.partial_path`) and renamed when complete, so a failed
or interrupted render never leaves a file that looks finished; a `.partial` left by a killed render is
replaced by the next. A full disk or a size limit ends the clip with one `OutputError` naming it and the
cause, and clips finished before are untouched. Adding a codec is one row in `CODECS`. HAP and DXV, which
PyAV's FFmpeg cannot encode, go to imageio-ffmpeg's FFmpeg through a pipe (`PipeEncoder`); everything else
stays in PyAV.
"""

import itertools
import os
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from rich.progress import ProgressColumn
from rich.text import Text

from vjgan.console import console, make_progress
from vjgan.errors import AudioError, RenderError
from vjgan.files import PARTIAL_SUFFIX, atomic_path, is_write_failure, partial_path, publish, write_error, writing
from vjgan.render.ffmpeg_pipe import FfmpegProcess, ffmpeg_exe
from vjgan.sizes import check_frame_size

QUEUE_CHUNKS = 2  # chunks waiting for the encoder thread; bounds the writer's memory to a few chunks
AUDIO_RATE_HZ = 48_000  # AAC output sample rate
AUDIO_BIT_RATE = 192_000  # AAC output bits per second (stereo)
GIF_MAX_FPS = 50  # players slow GIF frame delays under 2/100 s down to 1/10 s
GIF_PALETTE_SECONDS = 2.0  # a fresh palette is fitted to each stretch of this length
GIF_BUFFER_BYTES = 64 * 2**20  # cap on the RGB frames buffered to fit one GIF palette
GIF_PALETTE_SAMPLE_PX = 16_384  # pixels sampled from a stretch to fit its palette
PNG_COMPRESS_LEVEL = 1  # zlib level 0-9; 1 writes 1080p frames several times faster than the default 6
# round(255 * 256 / alpha) per alpha: colour * this >> 8 unmultiplies colour by alpha in integer arithmetic,
# faster than dividing (with the 3-way maximum, preparing a 1080p hap_alpha frame takes ~20 ms, not ~100).
UNMULTIPLY_SCALE = np.concatenate([[0], np.round(255 * 256 / np.arange(1, 256))]).astype(np.uint32)
# `render.layout` filter names -> swscale's, for frames written at another size than the clip's.
SCALE_INTERPOLATIONS = {"nearest": "POINT", "bilinear": "BILINEAR", "bicubic": "BICUBIC", "lanczos": "LANCZOS"}


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
    alpha: bool = False  # piped codecs: add an alpha plane (see `texture_frames`)


# H.264: `superfast` is the fastest preset that keeps CABAC and the deblocking filter; on 2 CPU cores it
# encodes 1080p30 faster than real time where `veryfast` does not (bench/render_io.py), and crf 18 buys
# back most of the quality difference at a higher bit rate. ProRes 422 HQ is profile 3 of prores_ks.
# HAP and DXV are DXT-compressed textures the GPU decodes, so VJ software scrubs, reverses and speeds them
# freely; they need sides in whole 4x4 blocks, and Resolume wants DXV in multiples of 16.
CODECS = {
    "h264": VideoCodec("libx264", "yuv420p", ("mp4", "mov"), {"preset": "superfast", "crf": "18"}, "plays everywhere"),
    "prores": VideoCodec("prores_ks", "yuv422p10le", ("mov",), {"profile": "3", "vendor": "apl0"}, "ProRes 422 HQ"),
    "hap": VideoCodec("hap", "rgba", ("mov",), {"format": "hap"}, "GPU-decoded, for Resolume, VDMX, TouchDesigner",
                      piped=True, block_px=4),
    "hap_q": VideoCodec("hap", "rgba", ("mov",), {"format": "hap_q"}, "HAP at higher quality, ~1.6x the size",
                        piped=True, block_px=4),
    "hap_alpha": VideoCodec("hap", "rgba", ("mov",), {"format": "hap_alpha"},
                            "HAP with alpha = max(R,G,B): black turns transparent, for layering",
                            piped=True, block_px=4, alpha=True),
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


def open_writer(
    path,
    fps: float,
    frame_size_wh: tuple[int, int],
    codec: str | None = None,
    fmt: str | None = None,
    audio_path=None,
    progress: bool = False,
    total_frames: int | None = None,
    source_size_wh: tuple[int, int] | None = None,
    scale_filter: str = "bicubic",
    encoder_threads: int = 0,
    announce_padding: bool = True,
) -> "ClipWriter":
    """A `ClipWriter` for a clip at `path`, after every check that can fail before rendering starts.

    `fmt` defaults to the path's suffix (.mp4, .mov, .gif; no suffix = a folder of PNG frames) and
    `codec` to the format's own (h264 for .mp4, prores for .mov); hap, hap_q, hap_alpha and dxv write
    .mov, padded to their block size (`PipeEncoder`). `audio_path` is muxed in as AAC,
    trimmed or padded to the video's duration. `progress` shows a bar of `total_frames` with frames/s.
    `source_size_wh` is the size of the frames given to `write` when it is not the clip's: they are scaled
    to `frame_size_wh` with `scale_filter` (see `Scaler`). `encoder_threads` caps the PyAV encoder's threads
    (0: FFmpeg's choice, from all cores), for clips encoded side by side. `announce_padding` prints the one
    line saying HAP/DXV frames were padded (off for all but the first of clips rendered together).
    """
    path = Path(path)
    fmt, codec = resolve_output(path, codec, fmt)
    check_frame_size(tuple(frame_size_wh))
    rate = frame_rate(fps, path)
    if fmt == "gif" and rate > GIF_MAX_FPS:
        raise RenderError(f"{path}: {float(rate):g} fps is too fast for GIF players; render GIFs at {GIF_MAX_FPS} fps or less")
    if audio_path is not None and fmt in ("gif", "png"):
        raise RenderError(f"{path}: {fmt} output cannot carry the audio track; render .mp4 or .mov")
    if scale_filter not in SCALE_INTERPOLATIONS:
        raise RenderError(f"filter {scale_filter!r}: choose one of {', '.join(SCALE_INTERPOLATIONS)}")
    scaler = Scaler(tuple(frame_size_wh), scale_filter)
    if fmt == "png":
        encoder = PngEncoder(path, scaler)
    elif codec is not None and CODECS[codec].piped:
        encoder = PipeEncoder(path, codec, rate, scaler, audio_path, announce_padding)
    else:
        encoder = AvEncoder(path, fmt, codec, rate, scaler, audio_path, encoder_threads)
    return ClipWriter(encoder, path, tuple(source_size_wh or frame_size_wh), progress, total_frames)


@dataclass(frozen=True)
class Scaler:
    """Frames as written -> the clip's size and pixel format, in one swscale call (C, off the GIL).

    A renderer on the CPU may hand over a small canvas: swscale converts it to YUV at its own size and
    then scales the planes, so a 384x216 canvas becomes a 1080p yuv420p frame in less time than a 1080p
    RGB frame takes to convert (bench/render.py). Frames already at the clip's size are only converted.
    """

    frame_size_wh: tuple[int, int]
    filter: str = "bicubic"  # a `render.layout.FILTERS` name

    def video_frame(self, rgb: np.ndarray, pix_fmt: str) -> av.VideoFrame:
        width, height = self.frame_size_wh
        colour = {} if pix_fmt == "rgb24" else {"dst_colorspace": "ITU709", "dst_color_range": "MPEG"}
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return frame.reformat(width, height, pix_fmt, interpolation=SCALE_INTERPOLATIONS[self.filter], threads=1, **colour)

    def rgb(self, frames: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) -> (n, H, W, 3) uint8, for the encoders that work in RGB (GIF, PNG)."""
        if frames.shape[1:3] == self.frame_size_wh[::-1]:
            return frames
        return np.stack([self.video_frame(rgb, "rgb24").to_ndarray() for rgb in frames])


def frame_rate(fps, path: Path) -> Fraction:
    """fps as an exact fraction (30000/1001 stays NTSC-exact), refusing nonsense."""
    try:
        rate = Fraction(fps).limit_denominator(1001)
    except (TypeError, ValueError):
        raise RenderError(f"{path}: frame rate {fps!r} is not a number") from None
    if not 0 < rate <= 1000:
        raise RenderError(f"{path}: frame rate {fps} must be more than 0 and at most 1000")
    return rate


class ClipWriter:
    """Streams `(n, H, W, 3)` uint8 RGB chunks to an encoder thread; a context manager.

    Where `takes_yuv420p`, chunks may also be ready yuv420p frames, `(n, H * 3 // 2, W)` uint8 as
    `layout.to_yuv420p` makes them: the encoder then takes them as they are, with no RGB frame and no
    swscale on its thread.

    Leaving the `with` block normally finishes the clip (and raises if the encoder failed); leaving it
    by an exception discards the partial output. Chunks passed to `write` are encoded later, on the
    thread: do not modify them in place afterwards.
    """

    def __init__(self, encoder, path: Path, frame_size_wh: tuple[int, int], progress: bool, total_frames: int | None):
        self.path = path
        self.frame_size_wh = frame_size_wh
        self.frames_written = 0
        self._encoder = encoder
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._progress = make_progress(FramesPerSecondColumn()) if progress else None
        if self._progress is not None:
            self._task = self._progress.add_task(f"writing {path.name}", total=total_frames)
            self._progress.start()
        self._thread = threading.Thread(target=self._encode_queued, name="vjgan-encoder", daemon=True)
        self._thread.start()

    @property
    def takes_yuv420p(self) -> bool:
        """Whether `write` takes yuv420p chunks: the encoder is fed yuv420p (H.264) and the chunks are
        at the clip's own size (swscale would scale a smaller canvas anyway, converting it on the way)."""
        return self._encoder.takes_yuv420p and self.frame_size_wh == self._encoder.scaler.frame_size_wh

    def write(self, frames: np.ndarray) -> None:
        """Queue a chunk: RGB `(n, H, W, 3)`, or yuv420p `(n, H * 3 // 2, W)` where `takes_yuv420p`; uint8."""
        width, height = self.frame_size_wh
        rgb_shape, yuv420p_shape = (height, width, 3), (height * 3 // 2, width)
        shapes = [rgb_shape, yuv420p_shape] if self.takes_yuv420p else [rgb_shape]
        if frames.dtype != np.uint8 or frames.shape[1:] not in shapes:
            expected = " or ".join(f"(n, {', '.join(map(str, shape))})" for shape in shapes)
            raise ValueError(f"expected {expected} uint8 frames, got {frames.shape} {frames.dtype}")
        self._raise_encoder_error()
        self._queue.put(np.ascontiguousarray(frames))  # blocks while the encoder is QUEUE_CHUNKS behind
        self.frames_written += len(frames)

    def close(self) -> None:
        """Finish the clip: drain the queue, flush the encoders, move the file into place."""
        self._stop_thread()
        try:
            self._raise_encoder_error()
            if self.frames_written == 0:
                raise RenderError(f"{self.path}: no frames were rendered")
            with writing(self.path, "the clip"):
                self._encoder.finish(self.frames_written)
        except BaseException:
            self._encoder.discard()
            raise

    def discard(self) -> None:
        """Abandon the clip and remove what was written of it."""
        self._stop_thread()
        self._encoder.discard()

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _encode_queued(self) -> None:
        while (frames := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that `write` never blocks on a dead encoder
            try:
                self._encoder.encode(frames)
            except BaseException as error:  # re-raised on the caller's thread
                self._error = error
            if self._progress is not None:
                self._progress.advance(self._task, len(frames))

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._progress is not None:
            self._progress.stop()

    def _raise_encoder_error(self) -> None:
        """Re-raise the encoder thread's failure here; the disk refusing a write reads as one line naming the clip."""
        if self._error is not None and is_write_failure(self._error):
            raise write_error(self.path, "the clip", self._error) from None
        if self._error is not None:
            raise self._error


class FramesPerSecondColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:.1f} frames/s")


class AvEncoder:
    """H.264/ProRes/GIF through PyAV into `<path>.partial`, renamed to `path` by `finish`.

    `encode` takes RGB chunks, converted (and scaled) by `Scaler`, or, where `takes_yuv420p`, yuv420p
    chunks at the clip's size (`ClipWriter.takes_yuv420p`), which go to the encoder as they are.
    """

    def __init__(self, path: Path, fmt: str, codec: str | None, rate: Fraction, scaler: Scaler, audio_path, threads: int = 0):
        self.path = path
        self.scaler = scaler
        frame_size_wh = scaler.frame_size_wh
        self.partial_path = partial_path_for(path)
        track = open_track(audio_path)
        container_options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self.container = av.open(str(self.partial_path), "w", format=fmt, options=container_options)
        except (OSError, av.FFmpegError) as error:
            if track is not None:
                track.close()
            raise RenderError(f"{path}: cannot write here ({error})") from None
        self.rate = rate
        if codec is None:  # GIF
            self.stream = add_video_stream(self.container, "gif", "pal8", rate, frame_size_wh, {}, threads)
            self.gif = GifQuantizer(rate, frame_size_wh)
        else:
            spec = CODECS[codec]
            self.stream = add_video_stream(self.container, spec.encoder, spec.pix_fmt, rate, frame_size_wh, spec.options, threads)
            self.gif = None
        self.takes_yuv420p = self.gif is None and self.stream.pix_fmt == "yuv420p"
        self.audio = AacFeed(track, self.container) if track is not None else None
        self.frames_encoded = 0

    def encode(self, frames: np.ndarray) -> None:
        if self.gif is not None:
            self._encode_video(self.gif.quantize(self.scaler.rgb(frames)))
        elif frames.ndim == 3:  # yuv420p, (n, H * 3 // 2, W)
            self._encode_video(yuv420p_frame(planes) for planes in frames)
        else:
            self._encode_video(self.scaler.video_frame(rgb, self.stream.pix_fmt) for rgb in frames)
        if self.audio is not None:  # keep audio interleaved with the video written so far
            self.audio.encode_until(audio_samples(self.frames_encoded, self.rate))

    def finish(self, n_frames: int) -> None:
        if self.gif is not None:
            self._encode_video(self.gif.flush())
        self.container.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.finish(audio_samples(n_frames, self.rate))
        self.container.close()
        publish(self.partial_path, self.path)

    def discard(self) -> None:
        if self.audio is not None:
            self.audio.track.close()
        try:
            self.container.close()
        except av.FFmpegError:
            pass  # an incomplete file is removed next anyway
        self.partial_path.unlink(missing_ok=True)

    def _encode_video(self, frames) -> None:
        for frame in frames:
            frame.pts = self.frames_encoded
            frame.time_base = self.stream.codec_context.time_base
            self.container.mux(self.stream.encode(frame))
            self.frames_encoded += 1


def yuv420p_frame(planes: np.ndarray) -> av.VideoFrame:
    """(H * 3 // 2, W) uint8 yuv420p (PyAV's layout: Y, then U and V) -> a frame tagged as `Scaler` makes them:
    BT.709, limited range."""
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.colorspace = frame.color_range = 1  # AVCOL_SPC_BT709, AVCOL_RANGE_MPEG
    return frame


def audio_samples(n_frames: int, rate: Fraction) -> int:
    """Audio samples (at AUDIO_RATE_HZ) that last as long as `n_frames` video frames."""
    return round(n_frames * AUDIO_RATE_HZ / rate)


class PipeEncoder:
    """HAP/DXV: frames padded to the codec's blocks, piped raw to imageio-ffmpeg's FFmpeg (`ffmpeg_pipe`).

    Like `AvEncoder` it writes `<path>.partial` and renames it in `finish`, and it is fed by the same
    `ClipWriter` thread, one chunk at a time; a pipe holds 64 KiB, so memory stays a few chunks. The padding is black, at
    the right and bottom, as H.264 codes 1080p as 1088 lines: pixel (x, y) of the clip is pixel (x, y)
    of the file, unscaled. A track goes in as raw 48 kHz samples through a second pipe, cut or padded
    with silence exactly as `AacFeed` does, because FFmpeg's own `-shortest` (reading the track itself)
    missed the video's end by ~0.3 s in tests; FFmpeg encodes it as AAC. No faststart: these files are played from disk, and
    moving the index to the front would rewrite a file of hundreds of Mbit/s.
    """

    takes_yuv420p = False  # RGB(A) frames go down the pipe

    def __init__(self, path: Path, codec: str, rate: Fraction, scaler: Scaler, audio_path, announce_padding: bool = True):
        self.path = path
        self.scaler = scaler
        self.rate = rate
        self.spec = CODECS[codec]
        exe = ffmpeg_exe(self.spec.encoder, codec)
        self.partial_path = partial_path_for(path)
        track = open_track(audio_path)
        try:
            self.partial_path.touch()  # fail here, not after the first chunk, where FFmpeg would open it
        except OSError as error:
            if track is not None:
                track.close()
            raise RenderError(f"{path}: cannot write here ({error.strerror or error})") from None
        self.padded_size_wh = padded_size(scaler.frame_size_wh, self.spec.block_px)
        if self.padded_size_wh != scaler.frame_size_wh and announce_padding:
            sizes = "{}x{} -> {}x{}".format(*scaler.frame_size_wh, *self.padded_size_wh)
            console.print(f"{codec}: padded {sizes} (multiples of {self.spec.block_px})", markup=False)
        video_input = ["-f", "rawvideo", "-pix_fmt", "rgba" if self.spec.alpha else "rgb24",
                       "-video_size", "{}x{}".format(*self.padded_size_wh), "-framerate", str(rate)]
        encoder_options = itertools.chain(*(("-" + key, value) for key, value in self.spec.options.items()))
        output = ["-map", "0:v", "-c:v", self.spec.encoder, *encoder_options]
        inputs = [video_input]
        if track is not None:
            inputs.append(["-f", "f32le", "-ar", str(AUDIO_RATE_HZ), "-ac", "2"])
            output += ["-map", "1:a", "-c:a", "aac", "-b:a", str(AUDIO_BIT_RATE)]
        try:
            self.ffmpeg = FfmpegProcess(exe, inputs, [*output, "-f", "mov"], self.partial_path, label=path)
        except RenderError:
            self.partial_path.unlink(missing_ok=True)
            if track is not None:
                track.close()
            raise
        self.track = track
        self.frames_encoded = 0

    def encode(self, frames: np.ndarray) -> None:
        pixels = texture_frames(self.scaler.rgb(frames), self.padded_size_wh, self.spec.alpha)
        self.frames_encoded += len(frames)
        self.ffmpeg.send(pixels, self._samples_until(self.frames_encoded))

    def finish(self, n_frames: int) -> None:
        if self.track is not None:
            self.ffmpeg.send(b"", self._samples_until(n_frames))
            self.track.close()
        self.ffmpeg.finish()
        publish(self.partial_path, self.path)

    def discard(self) -> None:
        self.ffmpeg.kill()
        if self.track is not None:
            self.track.close()
        self.partial_path.unlink(missing_ok=True)

    def _samples_until(self, n_frames: int) -> bytes:
        """The track's samples up to the end of frame `n_frames`, as FFmpeg's f32le: interleaved float32."""
        if self.track is None:
            return b""
        frames = self.track.read_until(audio_samples(n_frames, self.rate))
        if not frames:
            return b""
        planes = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)  # (2, n) float32
        return planes.T.tobytes()  # (n, 2)


def padded_size(frame_size_wh: tuple[int, int], block_px: int) -> tuple[int, int]:
    """Each side rounded up to a whole number of `block_px` blocks."""
    return tuple(-(-side // block_px) * block_px for side in frame_size_wh)


def texture_frames(rgb: np.ndarray, padded_size_wh: tuple[int, int], alpha: bool) -> np.ndarray:
    """(n, h, w, 3) frames -> (n, H, W, 3 or 4) uint8, padded with black (transparent) right and bottom.

    With `alpha`, alpha = max(R, G, B), so black is fully transparent and a saturated colour (a red
    particle) fully opaque, where luminance would make pure blue nearly invisible; the colour is divided
    by it ("unmultiplied"), so that the layer composited over black with straight alpha, as VJ software
    does, shows the frame itself rather than a darkened copy.
    """
    n_frames, height, width, _ = rgb.shape
    padded_width, padded_height = padded_size_wh
    if not alpha and (height, width) == (padded_height, padded_width):
        return rgb
    out = np.zeros((n_frames, padded_height, padded_width, 4 if alpha else 3), np.uint8)
    if alpha:
        value = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])  # (n, h, w); 25x faster than max(axis=-1)
        out[:, :height, :width, :3] = (rgb * UNMULTIPLY_SCALE[value][..., None] + 128) >> 8  # at most 65535 >> 8 = 255
        out[:, :height, :width, 3] = value
    else:
        out[:, :height, :width] = rgb
    return out


def partial_path_for(path: Path) -> Path:
    """`<path>.partial`, where a clip file is written until it is whole, once `path` is known to be writable there.

    A `.partial` left by a killed render is removed first, so the new clip is a new file: an FFmpeg
    orphaned by that kill, still finishing the old one, cannot write into it.
    """
    make_parent(path)
    if path.is_dir():
        raise RenderError(f"{path}: is a folder; give a file name for the clip")
    partial = partial_path(path)
    try:
        partial.unlink(missing_ok=True)
    except OSError as error:
        raise RenderError(f"{partial}: cannot replace a killed render's leftover ({error.strerror or error})") from None
    return partial


def open_track(audio_path) -> "TrackSamples | None":
    """The track to mux in, opened (a clear AudioError when it cannot be), or None for a silent clip."""
    return TrackSamples(open_audio(Path(audio_path))) if audio_path is not None else None


def make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RenderError(f"{path}: cannot create its folder ({error.strerror or error})") from None


def add_video_stream(container, encoder: str, pix_fmt: str, rate: Fraction, frame_size_wh, options: dict, threads: int = 0):
    """A stream whose time base is 1/fps, so that frame i is at pts i; tagged BT.709 like HD video.
    `threads`: the encoder's threads, 0 for FFmpeg's choice."""
    stream = container.add_stream(encoder, rate=rate)
    stream.width, stream.height = frame_size_wh
    stream.pix_fmt = pix_fmt
    stream.options = dict(options)
    stream.codec_context.time_base = 1 / rate
    # FFmpeg's own default (frame and slice threads; x264 then runs frame threads), where PyAV sets slice
    # threads alone: x264's frame threads encode 1080p ~20% faster on 2 cores, and scale on many.
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    if pix_fmt != "pal8":
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = 1  # AVCOL_*_BT709
        context.color_range = 1  # AVCOL_RANGE_MPEG: limited (TV) range, as players assume
    return stream


def open_audio(audio_path: Path):
    """The track's container and audio stream, checked before anything is rendered."""
    try:
        container = av.open(str(audio_path))
    except (OSError, av.FFmpegError) as error:
        raise AudioError(f"{audio_path}: cannot read the audio track ({error})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{audio_path}: no audio stream")
    return container


class TrackSamples:
    """A track decoded and resampled to 48 kHz stereo, handed out up to exact sample counts.

    Past the track's end it gives silence, so the audio always lasts exactly as long as the video.
    """

    def __init__(self, source):
        self.source = source
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE_HZ)
        self.fifo = av.AudioFifo()
        self.decoded = self._resampled_frames()
        self.samples_read = 0

    def read_until(self, total_samples: int) -> list[av.AudioFrame]:
        """The frames (pts in samples) that bring what was handed out up to `total_samples`."""
        needed = total_samples - self.samples_read
        if needed <= 0:
            return []
        while self.fifo.samples < needed and (frame := next(self.decoded, None)) is not None:
            self.fifo.write(frame)
        chunk = self.fifo.read(min(needed, self.fifo.samples)) if self.fifo.samples else None
        frames = [frame for frame in (chunk, silence(needed - (chunk.samples if chunk else 0))) if frame is not None]
        for frame in frames:
            frame.pts = self.samples_read
            frame.time_base = Fraction(1, AUDIO_RATE_HZ)
            self.samples_read += frame.samples
        return frames

    def close(self) -> None:
        self.source.close()

    def _resampled_frames(self):
        path = self.source.name
        try:
            decoded = self.source.decode(self.source.streams.audio[0])
            for frame in itertools.chain(decoded, [None]):  # None flushes the resampler's last samples
                for resampled in self.resampler.resample(frame):
                    resampled.pts = None  # the fifo counts samples itself
                    yield resampled
        except av.FFmpegError as error:
            raise AudioError(f"{path}: cannot decode the audio track ({error})") from None


class AacFeed:
    """Encodes a track's samples as AAC into a PyAV container, up to a given sample count."""

    def __init__(self, track: TrackSamples, container):
        self.track = track
        self.stream = container.add_stream("aac", rate=AUDIO_RATE_HZ, layout="stereo")
        self.stream.bit_rate = AUDIO_BIT_RATE
        self.container = container

    def encode_until(self, total_samples: int) -> None:
        for frame in self.track.read_until(total_samples):
            self.container.mux(self.stream.encode(frame))

    def finish(self, total_samples: int) -> None:
        self.encode_until(total_samples)
        self.container.mux(self.stream.encode(None))
        self.track.close()


def silence(n_samples: int) -> av.AudioFrame | None:
    if n_samples <= 0:
        return None
    frame = av.AudioFrame.from_ndarray(np.zeros((2, n_samples), np.float32), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE_HZ
    return frame


class GifQuantizer:
    """RGB frames -> 8-bit palette frames, with a palette fitted to every stretch of GIF_PALETTE_SECONDS.

    One global palette cannot serve a clip whose colours change (a training video goes from grey noise
    to full colour); one palette per frame flickers. So frames are buffered per stretch (bounded by
    GIF_BUFFER_BYTES), a median-cut palette is fitted to pixels sampled across the stretch, and each
    frame is mapped to it with Floyd-Steinberg dithering, which hides banding in smooth GAN gradients.
    """

    def __init__(self, rate: Fraction, frame_size_wh):
        width, height = frame_size_wh
        frames_in_buffer = GIF_BUFFER_BYTES // (width * height * 3)
        self.stretch_frames = max(1, min(round(GIF_PALETTE_SECONDS * rate), frames_in_buffer))
        self.buffer: list[np.ndarray] = []
        self.rng = np.random.default_rng(0)

    def quantize(self, frames: np.ndarray) -> list[av.VideoFrame]:
        out = []
        for rgb in frames:
            self.buffer.append(rgb)
            if len(self.buffer) == self.stretch_frames:
                out += self.flush()
        return out

    def flush(self) -> list[av.VideoFrame]:
        if not self.buffer:
            return []
        palette_image, argb = self._fit_palette(self.buffer)
        out = []
        for rgb in self.buffer:
            indices = Image.fromarray(rgb).quantize(palette=palette_image, dither=Image.Dither.FLOYDSTEINBERG)
            out.append(av.VideoFrame.from_ndarray((np.asarray(indices), argb), format="pal8"))
        self.buffer = []
        return out

    def _fit_palette(self, frames: list[np.ndarray]) -> tuple[Image.Image, np.ndarray]:
        pixels = np.stack(frames).reshape(-1, 3)  # (n * H * W, 3)
        side = int(np.sqrt(min(GIF_PALETTE_SAMPLE_PX, len(pixels))))
        sample = pixels[self.rng.choice(len(pixels), side * side, replace=False)].reshape(side, side, 3)
        palette_image = Image.fromarray(sample).quantize(256, method=Image.Quantize.MEDIANCUT, kmeans=1)
        rgb = np.zeros((256, 3), np.uint8)
        colours = np.array(palette_image.getpalette()[: 256 * 3], np.uint8).reshape(-1, 3)
        rgb[: len(colours)] = colours
        argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)  # (256, 4) opaque ARGB
        return palette_image, argb


class PngEncoder:
    """A folder of `frame_000000.png`, ...; each frame is written whole (`files.atomic_path`), and frames left
    over from a longer earlier render are removed."""

    takes_yuv420p = False  # PNG is RGB

    def __init__(self, folder: Path, scaler: Scaler):
        self.folder = folder
        self.scaler = scaler
        if folder.exists() and not folder.is_dir():
            raise RenderError(f"{folder}: is a file; PNG frames need a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RenderError(f"{folder}: cannot create the folder ({error.strerror or error})") from None
        if not os.access(folder, os.W_OK):
            raise RenderError(f"{folder}: folder is not writable")
        self.frames_encoded = 0

    def encode(self, frames: np.ndarray) -> None:
        for rgb in self.scaler.rgb(frames):  # each frame whole or not at all: a killed render leaves no half PNG
            with atomic_path(self.frame_path(self.frames_encoded), "a PNG frame") as partial:
                Image.fromarray(rgb).save(partial, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            self.frames_encoded += 1

    def finish(self, n_frames: int) -> None:
        """Remove frames past `n_frames` left by a longer earlier render, and a killed render's `.partial` frames."""
        for stale in self.folder.glob("frame_*.png*"):
            index = stale.name.removeprefix("frame_").removesuffix(PARTIAL_SUFFIX).removesuffix(".png")
            if index.isdigit() and (stale.name.endswith(PARTIAL_SUFFIX) or int(index) >= n_frames):
                stale.unlink()

    def discard(self) -> None:
        """Frames already written stay: each is a complete file, and the next render overwrites them."""

    def frame_path(self, index: int) -> Path:
        return self.folder / f"frame_{index:06d}.png"
