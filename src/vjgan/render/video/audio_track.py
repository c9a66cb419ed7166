"""A clip's sound: an audio track decoded, resampled to 48 kHz stereo and cut or padded to the video's length.

Frame timing is exact (frame i has pts i in a time base of 1/fps, so n frames last exactly n / fps), and
the track is handed out in exact sample counts up to the end of the frames written so far: the audio
always lasts exactly as long as the video, silence filling in past the track's end. PyAV clips encode it
as AAC here (`AacFeed`); HAP and DXV clips send the samples raw to FFmpeg, which encodes them
(`pipe_encoder`).
"""

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vjgan.errors import AudioError

AUDIO_RATE_HZ = 48_000  # AAC output sample rate
AUDIO_BIT_RATE = 192_000  # AAC output bits per second (stereo)


def audio_samples(n_frames: int, rate: Fraction) -> int:
    """Audio samples (at AUDIO_RATE_HZ) that last as long as `n_frames` video frames."""
    return round(n_frames * AUDIO_RATE_HZ / rate)


def open_track(audio_path) -> "TrackSamples | None":
    """The track to mux in, opened (a clear AudioError when it cannot be), or None for a silent clip."""
    return TrackSamples(open_audio(Path(audio_path))) if audio_path is not None else None


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
