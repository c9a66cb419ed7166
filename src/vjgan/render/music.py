"""A music-like track made from nothing, so the demo and the tests have something to dance to.

Four-on-the-floor drums at a steady tempo (a kick on every beat from t = 0, so beat k sits at
exactly k * 60 / bpm seconds), off-beat hi-hats, a snare on beats 2 and 4, a seeded bass line and
a pad, arranged in two-bar sections (intro, groove, break, drop) so that loudness and the
low/mid/high bands change over time as they do in real dance music.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vjgan.errors import AudioError
from vjgan.files import atomic_path

BEATS_PER_BAR = 4
BARS_PER_SECTION = 2
# Which parts play in each section, and the section's gain; the arrangement repeats.
SECTIONS = (
    {"kick", "hat"},
    {"kick", "hat", "snare", "bass"},
    {"hat", "bass", "pad"},
    {"kick", "hat", "snare", "bass", "pad"},
)
SECTION_GAINS = (0.6, 0.8, 0.45, 1.0)
# A minor pentatonic bass in semitones above A1 (55 Hz); a seed picks a note per beat for two bars.
BASS_ROOT_HZ = 55.0
BASS_SCALE_SEMITONES = (0, 3, 5, 7, 10, 12)
PAD_CHORD_HZ = (220.0, 261.63, 329.63)  # A minor triad, A3 C4 E4

# (container, codec, channel layout, encoder options) per output suffix; each decodes with `audio.load_audio`.
# The container is named, not guessed from the suffix: the track is written under `<name>.partial` first.
AUDIO_CODECS = {
    ".wav": ("wav", "pcm_s16le", "mono", {}),
    ".flac": ("flac", "flac", "mono", {}),
    ".mp3": ("mp3", "libmp3lame", "mono", {}),
    ".ogg": ("ogg", "vorbis", "stereo", {"strict": "experimental"}),  # FFmpeg's own Vorbis encoder wants stereo
    ".opus": ("opus", "libopus", "mono", {}),
    ".m4a": ("ipod", "aac", "mono", {}),
}
OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)


def synth_music(
    path: Path,
    seconds: float = 20.0,  # track length, seconds
    bpm: float = 128.0,  # tempo, beats per minute
    seed: int = 0,  # picks the bass line and the noise of the drums
    sample_rate_hz: int = 44100,  # Hz
) -> Path:
    """Write a music-like track to `path` (.wav, .flac, .mp3, .ogg, .opus or .m4a) and return the path."""
    samples = render_music(seconds, bpm, seed, sample_rate_hz)
    return write_audio(path, samples, sample_rate_hz)


def render_music(seconds: float, bpm: float, seed: int, sample_rate_hz: int) -> np.ndarray:
    """The track as mono float32 samples in [-1, 1], (round(seconds * sample_rate_hz),)."""
    if seconds <= 0 or bpm <= 0:
        raise ValueError(f"seconds and bpm must be positive, got {seconds} s at {bpm} bpm")
    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * sample_rate_hz))
    beat_seconds = 60.0 / bpm
    n_bars = int(np.ceil(seconds / (beat_seconds * BEATS_PER_BAR)))
    sounds = {
        "kick": _kick(sample_rate_hz),
        "snare": _snare(sample_rate_hz, rng),
        "hat": _hat(sample_rate_hz, rng),
    }
    bass_pattern = rng.choice(BASS_SCALE_SEMITONES, size=(2, BEATS_PER_BAR))  # two alternating bars, a note a beat
    bass_notes = {
        semitones: _bass_note(BASS_ROOT_HZ * 2 ** (semitones / 12), beat_seconds, sample_rate_hz)
        for semitones in BASS_SCALE_SEMITONES
    }
    mix = np.zeros(n_samples + sample_rate_hz, np.float32)  # one spare second for ringing tails
    for bar in range(n_bars):
        section = (bar // BARS_PER_SECTION) % len(SECTIONS)
        parts, gain = SECTIONS[section], SECTION_GAINS[section]
        bar_start_seconds = bar * BEATS_PER_BAR * beat_seconds
        for eighth in range(2 * BEATS_PER_BAR):
            start = int(round((bar_start_seconds + eighth * beat_seconds / 2) * sample_rate_hz))
            on_beat = eighth % 2 == 0
            if "kick" in parts and on_beat:
                _add(mix, start, gain * sounds["kick"])
            if "snare" in parts and eighth in (2, 6):
                _add(mix, start, gain * 0.5 * sounds["snare"])
            if "hat" in parts and not on_beat:
                _add(mix, start, gain * 0.1 * sounds["hat"])
            if "bass" in parts and on_beat:
                _add(mix, start, gain * 0.35 * bass_notes[bass_pattern[bar % 2, eighth // 2]])
        if "pad" in parts:
            start = int(round(bar_start_seconds * sample_rate_hz))
            _add(mix, start, gain * 0.12 * _pad(BEATS_PER_BAR * beat_seconds, sample_rate_hz))
    mix = mix[:n_samples]
    peak = float(np.abs(mix).max())
    return (mix * (0.9 / peak) if peak > 0 else mix).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, sample_rate_hz: int) -> Path:
    """Encode mono float32 `samples` in [-1, 1] to `path`, the codec chosen by the file's suffix; the file
    appears whole or not at all (`files.atomic_path`: a full disk is an `OutputError` naming it)."""
    path = Path(path)
    if path.suffix.lower() not in AUDIO_CODECS:
        raise AudioError(f"{path}: cannot write audio as '{path.suffix}'; use one of {', '.join(AUDIO_CODECS)}")
    container_format = AUDIO_CODECS[path.suffix.lower()][0]
    try:
        with atomic_path(path, "the track") as partial, av.open(str(partial), "w", format=container_format) as container:
            _encode(container, path.suffix.lower(), samples, sample_rate_hz)
    except av.FFmpegError as error:  # the encoder; the disk's refusals are OutputErrors by now
        raise AudioError(f"{path}: cannot write audio ({error})") from None
    return path


def _encode(container, suffix: str, samples: np.ndarray, sample_rate_hz: int) -> None:
    _, codec, layout, options = AUDIO_CODECS[suffix]
    stream_rate_hz = 48000 if codec == "libopus" and sample_rate_hz not in OPUS_RATES_HZ else sample_rate_hz
    stream = container.add_stream(codec, rate=stream_rate_hz, options=options)
    stream.layout = layout
    container.start_encoding()  # writes the header even for an empty track
    if len(samples):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32)[None], format="flt", layout="mono")
        frame.sample_rate = sample_rate_hz
        frame.pts = 0
        frame.time_base = Fraction(1, sample_rate_hz)
        # The encoder converts format, layout and rate and cuts codec-sized frames itself.
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _add(mix: np.ndarray, start: int, sound: np.ndarray) -> None:
    length = max(0, min(len(sound), len(mix) - start))
    mix[start : start + length] += sound[:length]


def _times(seconds: float, sample_rate_hz: int) -> np.ndarray:
    return np.arange(int(seconds * sample_rate_hz), dtype=np.float32) / sample_rate_hz


def _kick(sample_rate_hz: int) -> np.ndarray:
    """A sine whose pitch falls from 150 Hz to 50 Hz, with a 3 ms click for the beater: the classic
    electronic kick drum, whose bright attack marks the beat above the off-beat hats."""
    t = _times(0.35, sample_rate_hz)
    frequency_hz = 50.0 + 100.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(frequency_hz) / sample_rate_hz
    click = np.sin(2 * np.pi * 3000.0 * t) * np.exp(-t / 0.003)
    return np.sin(phase) * np.exp(-t / 0.12) + 0.5 * click


def _snare(sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    t = _times(0.2, sample_rate_hz)
    noise = rng.standard_normal(len(t)).astype(np.float32) * 0.5
    return (noise + np.sin(2 * np.pi * 185.0 * t)) * np.exp(-t / 0.05)


def _hat(sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """White noise, differentiated twice so nearly all of its energy lies above a few kHz."""
    t = _times(0.06, sample_rate_hz)
    noise = np.diff(rng.standard_normal(len(t) + 2), n=2).astype(np.float32) * 0.5
    return noise * np.exp(-t / 0.015)


def _bass_note(frequency_hz: float, seconds: float, sample_rate_hz: int) -> np.ndarray:
    """A band-limited sawtooth (six harmonics) with a short attack and decay, for one note."""
    t = _times(seconds, sample_rate_hz)
    harmonics = np.arange(1, 7, dtype=np.float32)[:, None]  # (6, 1)
    saw = (np.sin(2 * np.pi * frequency_hz * harmonics * t) / harmonics).sum(axis=0)  # (n,)
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / (seconds * 0.5))
    return saw * envelope


def _pad(seconds: float, sample_rate_hz: int) -> np.ndarray:
    t = _times(seconds, sample_rate_hz)
    chord = sum(np.sin(2 * np.pi * f * t) for f in PAD_CHORD_HZ)
    fade = np.minimum(np.minimum(t / 0.3, (seconds - t) / 0.3), 1.0)
    return chord * fade
