"""H.264, ProRes and GIF clips, encoded by PyAV's own FFmpeg in this process (`AvEncoder`)."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vjgan.errors import RenderError
from vjgan.files import publish
from vjgan.render.video.audio_track import AacFeed, audio_samples, open_track
from vjgan.render.video.codecs import CODECS
from vjgan.render.video.encoder import partial_path_for
from vjgan.render.video.frames import Scaler, yuv420p_frame
from vjgan.render.video.gif import GifQuantizer


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
        container_options = {}
        if fmt in ("mp4", "mov"):
            container_options = {"movflags": "+faststart", "movie_timescale": str(movie_timescale(rate))}
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


def movie_timescale(rate: Fraction) -> int:
    """Ticks per second of an mp4/mov's movie header, in which its edit list (the B-frame delay) is timed: a
    whole number of ticks per frame, so the clip's duration is exactly frames / fps. FFmpeg's default of 1000
    rounds it to the millisecond (112 frames at 30 fps read as 3.733 s, not 3.7333), which a player looping
    the clip honours."""
    return rate.numerator * (512 if rate.denominator == 1 else 1)


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
