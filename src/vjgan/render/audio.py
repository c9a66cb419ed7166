"""A music track -> per-video-frame control curves (loudness, onsets, beats, bands) for rendering.

Every curve holds one value per video frame: frame k stands for the audio from (k - 1/2)/fps to
(k + 1/2)/fps around its time k/fps, and takes the strongest feature value that falls in that span,
placed by its exact sample time (never by counting hops; onsets corrected for the flux's measured
lead), so a sound at time t lands on frame round(t * fps) however long the track. Curves are
normalised robustly to [0, 1] and smoothed by an attack/release envelope (instant attack, so hits
stay on their frame; a short release, so visuals do not flicker).

Decoding uses PyAV (mp3, ogg, wav, flac, m4a, any container FFmpeg reads, any channel layout). The
analysis uses librosa, whose slow submodules load on first use, so `vjgan --help` stays fast.
Features are computed in chunks of STFT frames: an hour-long DJ mix needs little more memory than
its samples.
"""

import contextlib
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import librosa  # cheap: librosa loads its submodules on first use
import numpy as np

from vjgan.console import console
from vjgan.errors import AudioError
from vjgan.locks import wait_lock

# A decoded track whose peak stays below this is silence, not music (-80 dBFS).
SILENT_PEAK = 1e-4
# STFT frames analysed at once: bounds memory on long tracks (4096 x 513 bins x 8 bytes = 17 MB; the
# tempogram of 4096 frames: 4096 x 689 lags x 8 bytes, 23 MB).
CHUNK_FRAMES = 4096
# Autocorrelation window for the tempo (librosa's default): the longest beat it can find is half of it.
TEMPO_WINDOW_SECONDS = 8.0


@dataclass(frozen=True)
class AnalysisConfig:
    sample_rate_hz: int = 22050  # rate the track is resampled to for analysis, Hz
    fft_size: int = 1024  # STFT window, samples (46 ms at 22050 Hz: sharp onsets, 21.5 Hz bins)
    hop_samples: int = 256  # STFT hop, samples (11.6 ms at 22050 Hz; frames above 86 fps interpolate)
    low_band_max_hz: float = 200.0  # kick and bass below this, Hz
    high_band_min_hz: float = 2000.0  # hats and air above this, Hz
    normalise_percentile: float = 98.0  # this percentile of a curve maps to 1 (louder moments clip)
    normalise_floor: float = 0.05  # scale is at least this fraction of the reference level (see `_normalise`)
    release_seconds: float = 0.12  # time constant of a curve's fall after a peak, seconds
    beat_decay_seconds: float = 0.15  # time constant of the pulse each beat starts, seconds


@dataclass(frozen=True, eq=False)
class AudioControls:
    """Control curves on the video frame clock: arrays (n_frames,) float32 in [0, 1]."""

    fps: float  # video frames per second the curves are sampled at
    duration_seconds: float  # length of the decoded track, seconds
    tempo_bpm: float | None  # estimated tempo, beats per minute; None when no steady beat was found
    beat_times_seconds: np.ndarray  # (n_beats,) float64, ascending
    rms: np.ndarray  # loudness
    onset: np.ndarray  # onset strength: how sharply new sound starts
    beat: np.ndarray  # 1 on each beat's frame, decaying until the next beat
    low: np.ndarray  # band energy below `low_band_max_hz`
    mid: np.ndarray  # band energy between the low and high bands
    high: np.ndarray  # band energy above `high_band_min_hz`

    @property
    def n_frames(self) -> int:
        return len(self.rms)


def load_audio(
    path: Path, sample_rate_hz: int = AnalysisConfig.sample_rate_hz, refuse_silence: bool = True
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of `path` to mono float32 at `sample_rate_hz`: (samples (n,), rate).

    A silent track is refused (`refuse_silence`) where it can only be a mistake (a clip driven by music);
    live, silence is a track like any other: the picture simply is not pushed by it.

    Sample 0 is the first sample the decoder gives (encoder delay already removed by FFmpeg), which
    is also what a player plays at time 0, so features line up with the track when it is muxed.
    A damaged packet becomes silence of its length, so the rest of the track keeps its time.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise AudioError(f"{path}: not a readable audio file ({_reason(error)})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: no audio stream in this file")
        stream = container.streams.audio[0]
        chunks, n_decoded, n_damaged = _decode_packets(container, stream, sample_rate_hz)
        if n_damaged and not n_decoded:
            raise AudioError(f"{path}: the audio is damaged or in an unsupported codec; no packet decodes")
        if n_damaged:
            console.print(f"vjgan: warning: {path}: {n_damaged} damaged audio packets played as silence", markup=False)
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)  # (n,)
        samples = _without_end_padding(samples, stream, sample_rate_hz)
    if len(samples) == 0:
        raise AudioError(f"{path}: the audio stream holds no samples (zero duration)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: the audio is damaged (it decodes to non-numbers)")
    if refuse_silence and float(np.abs(samples).max()) < SILENT_PEAK:
        raise AudioError(f"{path}: the audio is silent; choose a track with sound in it")
    return samples, sample_rate_hz


def _decode_packets(container, stream, sample_rate_hz: int) -> tuple[list[np.ndarray], int, int]:
    """Mono float32 chunks (n_i,) in order, and the counts of decoded and damaged packets."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate_hz)
    chunks: list[np.ndarray] = []
    n_decoded = n_damaged = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError):
            n_damaged += 1
            if packet.duration and packet.time_base:
                chunks.append(np.zeros(round(float(packet.duration * packet.time_base) * sample_rate_hz), np.float32))
            continue
        n_decoded += 1
        for frame in frames:
            chunks.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray()[0] for out in resampler.resample(None))
    return chunks, n_decoded, n_damaged


def _without_end_padding(samples: np.ndarray, stream, sample_rate_hz: int) -> np.ndarray:
    """Cut the silence an encoder pads its last frame with (AAC in .m4a: up to 1024 samples) where the
    container states the true length. Only an excess shorter than two codec frames is cut: a longer
    one means the stated length is an estimate (a VBR mp3 without a header), and the samples are real."""
    if not stream.duration or stream.time_base is None:
        return samples
    stated = int(round(float(stream.duration * stream.time_base) * sample_rate_hz))
    padding_limit = 2 * (stream.codec_context.frame_size or 0) * sample_rate_hz / (stream.sample_rate or sample_rate_hz)
    return samples[:stated] if 0 < len(samples) - stated <= padding_limit else samples


def analyse(track: Path, fps: float, config: AnalysisConfig = AnalysisConfig()) -> AudioControls:
    """Decode `track` and turn it into control curves for a video at `fps` lasting exactly the track."""
    samples, sample_rate_hz = load_audio(track, config.sample_rate_hz)
    if round(len(samples) / sample_rate_hz * fps) < 1:
        raise AudioError(f"{track}: the audio is shorter than one video frame at {fps:g} fps")
    return controls_from_samples(samples, sample_rate_hz, fps, config)


def controls_from_samples(
    samples: np.ndarray, sample_rate_hz: int, fps: float, config: AnalysisConfig = AnalysisConfig()
) -> AudioControls:
    """The analysis itself, on mono samples (n,): pure, so it is tested without files."""
    duration_seconds = len(samples) / sample_rate_hz
    n_frames = int(round(duration_seconds * fps))
    if n_frames < 1:
        raise ValueError(f"{len(samples)} samples are shorter than one video frame at {fps:g} fps")
    features = _stft_features(samples, sample_rate_hz, config)
    feature_times = np.arange(len(features["rms"])) * config.hop_samples / sample_rate_hz  # frame centres, s
    onset_lead_seconds = _onset_lead_seconds(sample_rate_hz, config)
    onset_times = feature_times + onset_lead_seconds  # when the sounds the flux reports really started

    tempo_bpm, beat_times_seconds = _beats(features["onset"], sample_rate_hz, config.hop_samples)
    beat_times_seconds = beat_times_seconds + onset_lead_seconds  # beats are tracked on the flux

    def curve(name: str, times: np.ndarray, floor_reference: float) -> np.ndarray:
        per_frame = _to_video_frames(features[name], times, fps, n_frames)
        normalised = _normalise(per_frame, config.normalise_percentile, config.normalise_floor * floor_reference)
        return _envelope(normalised, config.release_seconds * fps)

    band_reference = float(np.percentile(features["rms"], config.normalise_percentile))
    return AudioControls(
        fps=fps,
        duration_seconds=duration_seconds,
        tempo_bpm=tempo_bpm,
        beat_times_seconds=beat_times_seconds,
        rms=curve("rms", feature_times, float(features["rms"].max())),
        onset=curve("onset", onset_times, float(features["onset"].max())),
        beat=beat_pulses(beat_times_seconds, fps, n_frames, config.beat_decay_seconds),
        low=curve("low", feature_times, band_reference),
        mid=curve("mid", feature_times, band_reference),
        high=curve("high", feature_times, band_reference),
    )


def beat_frames(beat_times_seconds: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """The video frames the beats land on (nearest frame), ascending and in range: (B,) int64."""
    frames = np.unique(np.round(np.asarray(beat_times_seconds) * fps).astype(np.int64))
    return frames[(frames >= 0) & (frames < n_frames)]


def beat_pulses(beat_times_seconds: np.ndarray, fps: float, n_frames: int, decay_seconds: float) -> np.ndarray:
    """(n_frames,) float32: 1 on the frame nearest each beat, decaying exponentially until the next."""
    on_beat = beat_frames(beat_times_seconds, fps, n_frames)
    frames = np.arange(n_frames)
    latest = np.searchsorted(on_beat, frames, side="right") - 1  # the beat at or before each frame, -1 if none
    after_first = latest >= 0
    frames_since_beat = frames[after_first] - on_beat[latest[after_first]]
    pulses = np.zeros(n_frames, np.float32)
    pulses[after_first] = np.exp(-frames_since_beat / max(decay_seconds * fps, 1e-6))
    return pulses


def _stft_features(samples: np.ndarray, sample_rate_hz: int, config: AnalysisConfig) -> dict:
    """Per STFT frame (centred at frame * hop): onset flux and the amplitude of the whole spectrum
    (`rms`) and of each band.

    The track is padded once and cut into chunks of whole frames, so the result equals one STFT of
    the whole track; each chunk carries the frame before it, the flux's reference.
    """
    n_fft, hop = config.fft_size, config.hop_samples
    # Centred frames, as librosa's center=True; mirrored ends, so a track cut off mid-note does not end in a
    # step whose splatter reads as an onset.
    padded = np.pad(samples, (n_fft // 2, n_fft - n_fft // 2), mode="reflect")
    n_stft_frames = 1 + len(samples) // hop
    bin_hz = librosa.fft_frequencies(sr=sample_rate_hz, n_fft=n_fft)  # (bins,)
    bands = {
        "rms": np.ones_like(bin_hz, bool),
        "low": bin_hz < config.low_band_max_hz,
        "mid": (bin_hz >= config.low_band_max_hz) & (bin_hz < config.high_band_min_hz),
        "high": bin_hz >= config.high_band_min_hz,
    }
    mel_filters = librosa.filters.mel(sr=sample_rate_hz, n_fft=n_fft)  # (mels, bins)
    # Parseval with the Hann window's power: a full-scale sine gets rms 1/sqrt(2), as in the time domain.
    to_mean_square = 2.0 / (n_fft * float(np.sum(np.hanning(n_fft + 1)[:-1] ** 2)))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ["onset", *bands]}
    for first in range(0, n_stft_frames, CHUNK_FRAMES):
        last = min(first + CHUNK_FRAMES, n_stft_frames)
        start = max(first - 1, 0)
        segment = padded[start * hop : (last - 1) * hop + n_fft]
        power = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop, center=False)) ** 2  # (bins, last - start)
        mel_db = librosa.power_to_db(mel_filters @ power, top_db=None)  # (mels, last - start)
        flux = librosa.onset.onset_strength(S=mel_db, sr=sample_rate_hz, hop_length=hop, center=False)  # (frames,)
        keep = slice(first - start, None)  # without the reference frame of a later chunk
        parts["onset"].append(flux[keep])
        for name, in_band in bands.items():
            parts[name].append(np.sqrt(power[in_band, keep].sum(axis=0) * to_mean_square))
    return {name: np.concatenate(values).astype(np.float32) for name, values in parts.items()}


@functools.lru_cache(maxsize=8)
def _onset_lead_seconds(sample_rate_hz: int, config: AnalysisConfig) -> float:
    """How long before a frame's centre the sound starts whose flux peaks in that frame, seconds.

    Log-power flux jumps as soon as a sound enters the window's edge, so it peaks before the sound
    reaches the frame centre, by an amount that depends on window and hop (about 14 ms for 1024 / 256
    at 22050 Hz). It is measured here on clicks through this very analysis, spread over one hop.
    """
    hop, spacing = config.hop_samples, 4 * config.fft_size  # clicks whose windows never overlap
    positions = (np.arange(1, 17) * spacing + np.arange(16) * hop // 16).astype(np.int64)  # (16,)
    # Music never falls to digital silence: clicks over a -60 dBFS noise floor, as sounds over a mix.
    clicks = np.random.default_rng(0).standard_normal(positions[-1] + spacing).astype(np.float32) * 1e-3
    clicks[positions] = 1.0
    flux = _stft_features(clicks, sample_rate_hz, config)["onset"]
    leads = []
    for position in positions:
        first = (position - spacing // 2) // hop
        peak_frame = first + int(np.argmax(flux[first : (position + spacing // 2) // hop]))
        leads.append(position - peak_frame * hop)
    return float(np.mean(leads)) / sample_rate_hz


@contextlib.contextmanager
def _numba_cache_lock():
    """Serialise librosa's numba-compiled beat tracker across processes.

    librosa caches its compiled code on disk; two processes compiling at once (parallel renders) can
    leave a cache index that points at the wrong code, and every later call then segfaults.
    """
    try:
        lock = wait_lock(Path(tempfile.gettempdir()) / "vjgan-librosa-numba.lock")
    except OSError:  # another user's lock file: run unprotected rather than refuse to render
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _beats(onset: np.ndarray, sample_rate_hz: int, hop: int) -> tuple[float | None, np.ndarray]:
    """Tempo and beat times (seconds, on the STFT frame clock) from the onset envelope.

    librosa's tempo comes in steps of whole frames of lag (117.5 or 123 bpm, never 120, at 512-sample
    hops), so it is refined to the mean interval between tracked beats that agree with it.
    """
    tempogram = _mean_tempogram(onset, sample_rate_hz, hop)
    with _numba_cache_lock():  # librosa.beat compiles (or loads cached) numba code on first use
        coarse_bpm = float(librosa.feature.tempo(tg=tempogram, sr=sample_rate_hz, hop_length=hop)[0])
        _, beat_frames = librosa.beat.beat_track(onset_envelope=onset, sr=sample_rate_hz, hop_length=hop, bpm=coarse_bpm)
    beat_times_seconds = np.asarray(beat_frames, np.float64) * hop / sample_rate_hz
    if len(beat_times_seconds) < 2 or coarse_bpm <= 0:
        return None, beat_times_seconds
    intervals_seconds = np.diff(beat_times_seconds)
    coarse_interval_seconds = 60.0 / coarse_bpm
    steady = np.abs(intervals_seconds - coarse_interval_seconds) < 0.25 * coarse_interval_seconds
    if not steady.any():
        return coarse_bpm, beat_times_seconds
    return 60.0 / float(intervals_seconds[steady].mean()), beat_times_seconds


def _mean_tempogram(onset: np.ndarray, sample_rate_hz: int, hop: int) -> np.ndarray:
    """The track's autocorrelation tempogram averaged over time, (lags, 1), built in chunks: librosa's
    own tempo estimate holds the whole tempogram (1.7 GB for ten minutes) to average it the same way."""
    window_frames = int(librosa.time_to_frames(TEMPO_WINDOW_SECONDS, sr=sample_rate_hz, hop_length=hop))
    total, n_columns = np.zeros(window_frames), 0
    for first in range(0, len(onset), CHUNK_FRAMES):
        piece = onset[first : first + CHUNK_FRAMES]
        tempogram = librosa.feature.tempogram(
            onset_envelope=piece, sr=sample_rate_hz, hop_length=hop, win_length=window_frames
        )  # (window_frames, len(piece))
        total += tempogram.sum(axis=1)
        n_columns += tempogram.shape[1]
    return (total / n_columns)[:, None]


def _to_video_frames(values: np.ndarray, times_seconds: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,): the largest value whose time falls in each video frame's span, interpolated where none does."""
    frame_of_value = np.floor(times_seconds * fps + 0.5).astype(np.int64)
    inside = (frame_of_value >= 0) & (frame_of_value < n_frames)
    per_frame = np.full(n_frames, -np.inf)
    np.maximum.at(per_frame, frame_of_value[inside], values[inside])
    empty = np.isinf(per_frame)
    if empty.any():
        frame_times = np.arange(n_frames) / fps
        per_frame[empty] = np.interp(frame_times[empty], times_seconds, values)
    return per_frame


def _normalise(curve: np.ndarray, percentile: float, floor: float) -> np.ndarray:
    """Scale so the `percentile` maps to 1, clipping above; the scale never drops below `floor`, so a
    quiet band (a bass-only track's highs) or a near-constant curve stays small instead of becoming noise."""
    scale = max(float(np.percentile(curve, percentile)), floor, 1e-12)
    return np.clip(curve / scale, 0.0, 1.0)


def _envelope(curve: np.ndarray, release_frames: float) -> np.ndarray:
    """Instant rise, exponential fall with time constant `release_frames`: (n,) float32."""
    keep = float(np.exp(-1.0 / release_frames)) if release_frames > 0 else 0.0
    smoothed = np.empty(len(curve), np.float32)
    level = 0.0
    for index, value in enumerate(curve.tolist()):
        level = value if value > level else value + (level - value) * keep
        smoothed[index] = level
    return smoothed


def _reason(error: Exception) -> str:
    """FFmpeg's own words for an error, without the errno and path PyAV adds around them."""
    return getattr(error, "strerror", None) or str(error)
