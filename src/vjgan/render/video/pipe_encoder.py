"""HAP and DXV clips, which PyAV's FFmpeg cannot encode: piped raw to imageio-ffmpeg's FFmpeg (`PipeEncoder`)."""

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vjgan.console import console
from vjgan.errors import RenderError
from vjgan.files import publish
from vjgan.render.video.audio_track import AUDIO_BIT_RATE, AUDIO_RATE_HZ, audio_samples, open_track
from vjgan.render.video.codecs import CODECS
from vjgan.render.video.encoder import partial_path_for
from vjgan.render.video.ffmpeg_pipe import FfmpegProcess, ffmpeg_exe
from vjgan.render.video.frames import Scaler

# round(255 * 256 / alpha) per alpha: colour * this >> 8 unmultiplies colour by alpha in integer arithmetic,
# faster than dividing (with the 3-way maximum, preparing a 1080p hap_alpha frame takes ~20 ms, not ~100).
UNMULTIPLY_SCALE = np.concatenate([[0], np.round(255 * 256 / np.arange(1, 256))]).astype(np.uint32)


class PipeEncoder:
    """HAP/DXV: frames padded to the codec's blocks, piped raw to imageio-ffmpeg's FFmpeg (`ffmpeg_pipe`).

    Like `AvEncoder` it writes `<path>.partial` and renames it in `finish`, and it is fed by the same
    `ClipWriter` thread, one chunk at a time; a pipe holds 64 KiB, so memory stays a few chunks. The padding is black, at
    the right and bottom, as H.264 codes 1080p as 1088 lines: pixel (x, y) of the clip is pixel (x, y)
    of the file, unscaled. Frames go to FFmpeg's stdin as rawvideo packets in a NUT stream muxed here by
    PyAV; a track goes in the same stream as raw 48 kHz float samples, cut or padded with silence exactly
    as `AacFeed` does, because FFmpeg's own `-shortest` (reading the track itself) missed the video's end
    by ~0.3 s in tests; FFmpeg encodes it as AAC. One pipe, so it runs where a child gets no second one
    (Windows). No faststart: these files are played from disk, and
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
        encoder_options = itertools.chain(*(("-" + key, value) for key, value in self.spec.options.items()))
        output = ["-map", "0:v", "-c:v", self.spec.encoder, *encoder_options]
        if track is not None:
            output += ["-map", "0:a", "-c:a", "aac", "-b:a", str(AUDIO_BIT_RATE)]
        try:
            self.ffmpeg = FfmpegProcess(exe, ["-f", "nut"], [*output, "-f", "mov"], self.partial_path, label=path)
        except RenderError:
            self.partial_path.unlink(missing_ok=True)
            if track is not None:
                track.close()
            raise
        self.track = track
        self.pix_fmt = "rgba" if self.spec.alpha else "rgb24"
        self.muxer = av.open(self.ffmpeg, "w", format="nut")
        self.video = self.muxer.add_stream("rawvideo", rate=rate)
        self.video.width, self.video.height = self.padded_size_wh
        self.video.pix_fmt = self.pix_fmt
        self.video.time_base = 1 / rate
        self.audio = self.muxer.add_stream("pcm_f32le", rate=AUDIO_RATE_HZ, layout="stereo") if track is not None else None
        self.frames_encoded = 0

    def encode(self, frames: np.ndarray) -> None:
        pixels = texture_frames(self.scaler.rgb(frames), self.padded_size_wh, self.spec.alpha)
        for pixel_frame in pixels:
            frame = av.VideoFrame.from_ndarray(pixel_frame, format=self.pix_fmt)
            frame.pts = self.frames_encoded
            self.muxer.mux(self.video.encode(frame))
            self.frames_encoded += 1
        self._mux_audio_until(self.frames_encoded)

    def finish(self, n_frames: int) -> None:
        self._mux_audio_until(n_frames)
        for stream in filter(None, (self.video, self.audio)):
            self.muxer.mux(stream.encode(None))
        self.muxer.close()
        if self.track is not None:
            self.track.close()
        self.ffmpeg.finish()
        publish(self.partial_path, self.path)

    def discard(self) -> None:
        try:
            self.muxer.close()  # its last packets and trailer go to FFmpeg, whose file is removed below
        except (RenderError, av.FFmpegError):  # FFmpeg had already failed
            pass
        self.ffmpeg.kill()
        if self.track is not None:
            self.track.close()
        self.partial_path.unlink(missing_ok=True)

    def _mux_audio_until(self, n_frames: int) -> None:
        """The track's samples up to the end of frame `n_frames` (pts in samples, as `read_until` sets them)."""
        if self.track is None:
            return
        for frame in self.track.read_until(audio_samples(n_frames, self.rate)):
            self.muxer.mux(self.audio.encode(frame))


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
