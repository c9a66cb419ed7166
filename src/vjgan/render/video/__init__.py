"""Clip writers: every rendered frame leaves vjgan through here (H.264 mp4, ProRes, HAP or DXV mov, GIF, PNG).

This package alone knows the clip formats. `open_writer(path, WriterOptions(fps, frame_size_wh, ...))`
checks everything that can fail before rendering starts and returns a `ClipWriter`, which streams chunks
of frames to one `Encoder` on a thread. Frame timing is exact: frame i has pts i in a time base of
1/fps, so n frames last exactly n / fps; an audio track is re-encoded to AAC and cut or padded with
silence to that same duration. A video file is written to `<name>.partial` and renamed when complete.

One module per job:
    codecs        the codec and container tables (`CODECS`, `FORMATS`) and the checks on a clip's name and rate
    writer        `WriterOptions`, `open_writer`, `ClipWriter` (the queue and the encoder thread)
    encoder       the `Encoder` protocol every encoder offers the writer thread; `<name>.partial` files
    frames        `Scaler` (swscale: size, pixel format, BT.709 tags) and ready yuv420p frames
    av_encoder    H.264, ProRes and GIF through PyAV
    pipe_encoder  HAP and DXV through imageio-ffmpeg's FFmpeg (`ffmpeg_pipe` runs it)
    audio_track   the track resampled, cut or padded to the video, and its AAC stream
    gif           GIF palettes fitted stretch by stretch
    png           a folder of PNG frames
"""

from vjgan.render.video.codecs import (
    CODECS,
    FORMATS,
    OutputFormat,
    VideoCodec,
    default_format,
    frame_rate,
    resolve_output,
)
from vjgan.render.video.encoder import Encoder
from vjgan.render.video.frames import Scaler, yuv420p_frame
from vjgan.render.video.writer import ClipWriter, WriterOptions, open_writer

__all__ = [
    "CODECS",
    "FORMATS",
    "ClipWriter",
    "Encoder",
    "OutputFormat",
    "Scaler",
    "VideoCodec",
    "WriterOptions",
    "default_format",
    "frame_rate",
    "open_writer",
    "resolve_output",
    "yuv420p_frame",
]
