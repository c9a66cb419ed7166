"""Live audio -> the control signals the offline analysis (`vjgan.render.audio`) makes for a whole track,
hop by hop as the sound arrives: rms, onset, low, mid, high and beat in [0, 1], onset and beat events,
the tempo, tap tempo, auto-gain and a sensitivity.

The signals keep the offline meanings (the same window length in seconds, Slaney mel bands, log-power
flux as librosa's onset strength, band edges, release and beat decay), so an effect looks alike in a
clip and live. What differs comes from not knowing the future:
- Causal: a hop is analysed from the samples up to its end only. Log-power flux jumps as soon as a sound
  enters the window's edge, so a sound is reported in the hop that holds it or the next. The flux
  compares each window with the one two hops before, so a hit's whole rise counts wherever in a hop it
  falls, and only its rise above the flux's running mean (noise flickers, pads shimmer).
- Normalised by followers, not by the whole track: each signal is divided by a follower of its recent
  peaks (instant rise, slow fall), the live counterpart of the track's 98th percentile. That is the
  auto-gain: quiet and loud inputs drive alike. With auto-gain off a manual gain sets the level scale
  (the balance between bands keeps following the music, as offline). `sensitivity` multiplies the onset
  strength: at 1 a hit half as strong as the recent peaks is an onset, at 2 one a quarter as strong.
Input below the gate (-60 dBFS) is silence: no signal, no event, and no follower chasing the noise floor.

The beat tracker is causal too: the tempo is the strongest lag of the onset envelope's autocorrelation
over the last 8 s (the offline tempo window, weighted by the same log-normal prior around 120 bpm),
the phase is where a comb at that lag lines up with the last beats' envelope, and between estimates an
onset near a predicted beat pulls the beat onto itself, so beats land with the kicks heard, not a guess
later. A tapped tempo settles the octave: the audio may refine it, not leave it.

Pure numpy, no I/O, one thread: `process` is called by whoever owns the audio (`live.audio_input`);
`sensitivity`, `gain` and `auto_gain` may be set, and `tap` called, from any thread.
"""

import math
import threading
from dataclasses import dataclass

import numpy as np

from vjgan.render.audio import TEMPO_WINDOW_SECONDS, AnalysisConfig

OFFLINE = AnalysisConfig()
LEVEL_FLOOR_DB = -120.0  # level_db reported for digital silence, dBFS


@dataclass(frozen=True)
class LiveAnalysisConfig:
    hop_seconds: float = 512 / 48000  # analysis step (512 samples at 48 kHz; a power of two of samples at any rate), seconds
    window_seconds: float = OFFLINE.fft_size / OFFLINE.sample_rate_hz  # analysis window (offline's 46 ms), seconds
    n_mels: int = 128  # mel bands of the onset flux (librosa's default, as offline)
    low_band_max_hz: float = OFFLINE.low_band_max_hz  # kick and bass below this, Hz
    high_band_min_hz: float = OFFLINE.high_band_min_hz  # hats and air above this, Hz
    band_floor: float = OFFLINE.normalise_floor  # a band's scale is at least this fraction of the level's
    release_seconds: float = OFFLINE.release_seconds  # time constant of a signal's fall after a peak, seconds
    beat_decay_seconds: float = OFFLINE.beat_decay_seconds  # time constant of the pulse each beat starts, seconds
    gate_db: float = -60.0  # window level below which the input is silence, dBFS
    full_scale_db: float = -12.0  # with manual gain 1, this window level reads rms 1 (a hot line-in), dBFS
    auto_gain_floor_db: float = -54.0  # auto-gain lifts nothing quieter than this to full scale (at most +42 dB), dBFS
    level_release_seconds: float = TEMPO_WINDOW_SECONDS  # time constant of the level followers' fall, seconds
    mel_floor_db: float = -100.0  # log-mel floor below the level reference (offline's amin, made relative), dB
    flux_lag_hops: int = 2  # the flux compares each window with the one this many hops before: a hit's whole rise
    flux_mean_seconds: float = 1.0  # time constant of the flux's running mean, which a hit must rise above, seconds
    onset_floor_db: float = 6.0  # the flux reference (of the rise above that mean) is at least this, dB
    onset_release_seconds: float = 4.0  # time constant of the flux reference's fall, seconds
    onset_threshold: float = 0.5  # onset strength that counts as an onset (the glitch effect's gate)
    min_onset_interval_seconds: float = 0.06  # onsets closer than this are one (a 16th note at 250 bpm)
    tempo_window_seconds: float = TEMPO_WINDOW_SECONDS  # onset envelope the tempo is measured over, seconds
    tempo_update_seconds: float = 0.5  # how often tempo and phase are re-estimated, seconds
    min_bpm: float = 40.0  # slowest tempo looked for, bpm
    max_bpm: float = 240.0  # fastest tempo looked for, bpm
    prior_bpm: float = 120.0  # centre of the tempo prior (librosa's), bpm
    prior_octaves: float = 1.0  # its standard deviation, octaves (librosa's)
    min_tempo_confidence: float = 0.2  # autocorrelation at the tempo's lag over that at lag 0 below which no tempo
    comb_beats: int = 4  # beats back the phase is measured over (a short comb forgives a slightly wrong tempo)
    beat_tolerance: float = 0.15  # an onset this fraction of a beat from the predicted one locks the phase onto itself
    beat_hold_seconds: float = 4.0  # beats stop this long after the last onset (unless tapped)
    tap_reset_seconds: float = 2.0  # a pause this long between taps starts a new tap sequence, seconds
    taps_kept: int = 8  # the tap tempo is the median interval of the last this many taps
    tap_range: float = 0.1  # a tapped tempo lets the audio refine it by this fraction, not leave it


@dataclass(frozen=True)
class AudioFeatures:
    """The controls at one moment: what the analyser published for the hop ending at `time_seconds`."""

    time_seconds: float  # the caller's clock at the end of the hop, seconds
    rms: float  # loudness, [0, 1]
    onset: float  # onset strength: how sharply new sound starts, [0, 1]
    low: float  # band energy below `low_band_max_hz`, [0, 1]
    mid: float  # band energy between the low and high bands, [0, 1]
    high: float  # band energy above `high_band_min_hz`, [0, 1]
    beat: float  # 1 on a beat, decaying until the next, [0, 1]
    onset_count: int  # onsets since the start: a new one when it changes
    beat_count: int  # beats since the start
    bpm: float | None  # tempo heard (or tapped); None while none is
    level_db: float  # input level before any gain (window rms), dBFS

    @classmethod
    def silence(cls, time_seconds: float = 0.0) -> "AudioFeatures":
        """No audio: what a consumer sees before the first hop."""
        return cls(time_seconds, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, None, LEVEL_FLOOR_DB)

    def signals(self) -> dict[str, float]:
        """The six controls by the names `render.effects` drives effects with."""
        return {"rms": self.rms, "onset": self.onset, "low": self.low, "mid": self.mid, "high": self.high, "beat": self.beat}


def mel_filters(sample_rate_hz: int, fft_size: int, n_mels: int) -> np.ndarray:
    """Slaney mel filterbank (n_mels, fft_size // 2 + 1) float32, equal to librosa.filters.mel's default,
    written out so live mode does not import scipy and numba (1.4 s) for one matrix."""

    def hz_to_mel(hz):
        hz = np.asarray(hz, np.float64)
        linear = hz / (200.0 / 3)
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), linear)

    def mel_to_hz(mel):
        linear = mel * (200.0 / 3)
        return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), linear)

    bin_hz = np.fft.rfftfreq(fft_size, 1.0 / sample_rate_hz)  # (bins,)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2), n_mels + 2))  # (n_mels + 2,)
    widths_hz = np.diff(edges_hz)
    ramps = edges_hz[:, None] - bin_hz[None, :]  # (n_mels + 2, bins)
    rising = -ramps[:-2] / widths_hz[:-1, None]
    falling = ramps[2:] / widths_hz[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2 : n_mels + 2] - edges_hz[:n_mels]))[:, None]  # Slaney: equal area per band
    return weights.astype(np.float32)


def power_of_two_samples(seconds: float, sample_rate_hz: int) -> int:
    """The power of two of samples nearest `seconds` (FFTs and sound cards like those sizes)."""
    return 2 ** max(0, round(math.log2(seconds * sample_rate_hz)))


class TapTempo:
    """bpm from the median interval of the last taps; a pause of `reset_seconds` starts afresh. Thread-safe."""

    def __init__(self, reset_seconds: float = LiveAnalysisConfig.tap_reset_seconds, kept: int = LiveAnalysisConfig.taps_kept):
        self.reset_seconds, self.kept = reset_seconds, kept
        self._times: list[float] = []
        self._lock = threading.Lock()

    def tap(self, time_seconds: float) -> float | None:
        """Records a tap; the tempo of the taps so far, bpm, or None after the first of a sequence."""
        with self._lock:
            if self._times and not 0.0 < time_seconds - self._times[-1] <= self.reset_seconds:
                self._times = []
            self._times = [*self._times[1 - self.kept :], time_seconds]
            if len(self._times) < 2:
                return None
            return 60.0 / float(np.median(np.diff(self._times)))


class _Follower:
    """A signal's recent peak: rises at once, falls exponentially, never below `floor`."""

    def __init__(self, floor: float, release_hops: float):
        self.floor, self.keep = floor, math.exp(-1.0 / release_hops)
        self.value = floor

    def update(self, sample: float) -> float:
        self.value = max(sample, self.value * self.keep, self.floor)
        return self.value


class AudioAnalyser:
    """Feeds on hops of mono float32 samples; `process` returns the features after each."""

    def __init__(self, sample_rate_hz: int, hop_samples: int | None = None, config: LiveAnalysisConfig = LiveAnalysisConfig()):
        """`hop_samples`: the length of every hop `process` is given; by default a power of two near `hop_seconds`."""
        if hop_samples is None:
            hop_samples = power_of_two_samples(config.hop_seconds, sample_rate_hz)
        if sample_rate_hz <= 0 or hop_samples <= 0:
            raise ValueError(f"sample rate and hop must be positive, got {sample_rate_hz} Hz and {hop_samples} samples")
        self.config, self.sample_rate_hz, self.hop_samples = config, sample_rate_hz, hop_samples
        self.hop_seconds = hop_samples / sample_rate_hz
        self.sensitivity = 1.0  # higher: quieter hits count as onsets (scales the onset strength)
        self.gain = 1.0  # input gain while auto_gain is off
        self.auto_gain = True  # follow the input level
        self.taps = TapTempo(config.tap_reset_seconds, config.taps_kept)

        self.fft_size = max(hop_samples, power_of_two_samples(config.window_seconds, sample_rate_hz))  # the window
        self._window = np.zeros(self.fft_size, np.float32)  # the newest fft_size samples
        self._hann = np.hanning(self.fft_size + 1)[:-1].astype(np.float32)  # periodic, as librosa's
        # Parseval with the window's power: a full-scale sine reads rms 1/sqrt(2), as in the time domain.
        self._to_mean_square = 2.0 / (self.fft_size * float(np.sum(self._hann.astype(np.float64) ** 2)))
        self._mels = mel_filters(sample_rate_hz, self.fft_size, config.n_mels)  # (n_mels, bins)
        bin_hz = np.fft.rfftfreq(self.fft_size, 1.0 / sample_rate_hz)
        low_end, high_start = np.searchsorted(bin_hz, [config.low_band_max_hz, config.high_band_min_hz])
        self._bands = {"low": slice(0, low_end), "mid": slice(low_end, high_start), "high": slice(high_start, None)}

        hops_per_second = 1.0 / self.hop_seconds
        level_hops, onset_hops = config.level_release_seconds * hops_per_second, config.onset_release_seconds * hops_per_second
        auto_floor = 10 ** (config.auto_gain_floor_db / 20)
        self._level = _Follower(auto_floor, level_hops)  # window rms, before gain
        self._band_levels = {name: _Follower(0.0, level_hops) for name in self._bands}
        self._flux_reference = _Follower(config.onset_floor_db, onset_hops)
        self._flux_mean = 0.0  # dB
        self._flux_mean_step = 1.0 - math.exp(-self.hop_seconds / config.flux_mean_seconds)
        self._gate_rms = 10 ** (config.gate_db / 20)
        self._release_keep = math.exp(-self.hop_seconds / config.release_seconds)
        self._smoothed = dict.fromkeys(("rms", "onset", "low", "mid", "high"), 0.0)
        self._recent_mel_db: list[np.ndarray] = []  # the last flux_lag_hops log-mel frames (fewer: silence before them)

        self._onset_armed = True
        self._last_onset_seconds = -math.inf
        self.onset_count = 0

        # Beat tracking: the flux envelope of the last tempo window, newest last (a ring read in order).
        self._envelope = np.zeros(int(round(config.tempo_window_seconds * hops_per_second)), np.float32)
        self._envelope_end = 0  # index of the next write
        self._tempo_update_hops = max(1, round(config.tempo_update_seconds * hops_per_second))
        self._hops_to_tempo_update = self._tempo_update_hops
        self._heard_period_seconds: float | None = None  # from the audio
        self._tap_lock = threading.Lock()
        self._tap: tuple[int, float, float | None] = (0, -math.inf, None)  # taps so far, the last one's time, tapped period
        self._taps_seen = 0
        self._next_beat_seconds = math.inf
        self._last_beat_seconds = -math.inf
        self.beat_count = 0

    def tap(self, time_seconds: float) -> float | None:
        """Tap tempo (any thread): each tap is a beat; from the second tap on, the tempo is the taps' (the audio
        may refine it by `tap_range`). Returns the tapped bpm, or None after the first tap of a sequence."""
        with self._tap_lock:
            bpm = self.taps.tap(time_seconds)
            period = 60.0 / bpm if bpm is not None else self._tap[2]
            self._tap = (self._tap[0] + 1, time_seconds, period)  # replaced whole: `process` reads it without the lock
        return bpm

    @property
    def period_seconds(self) -> float | None:
        """The beat period the tracker runs on: the heard one, else the tapped one; None while neither is known."""
        return self._heard_period_seconds or self._tap[2]

    def process(self, hop: np.ndarray, end_seconds: float) -> AudioFeatures:
        """Analyse one hop (hop_samples,) of mono samples whose last sample sounded at `end_seconds` (the caller's clock)."""
        if hop.shape != (self.hop_samples,):
            raise ValueError(f"a hop is {self.hop_samples} mono samples, got shape {hop.shape}")
        self._window[: -self.hop_samples] = self._window[self.hop_samples :]
        self._window[-self.hop_samples :] = hop
        power = np.abs(np.fft.rfft(self._window * self._hann)) ** 2 * self._to_mean_square  # (bins,) mean-square units
        level_rms = math.sqrt(float(power.sum()))
        level_db = 20 * math.log10(level_rms) if level_rms > 10 ** (LEVEL_FLOOR_DB / 20) else LEVEL_FLOOR_DB
        if level_rms >= self._gate_rms:
            targets, flux = self._signals(power, level_rms)
            onset_now = self._detect_onset(targets["onset"], end_seconds)
        else:  # silence: nothing to show, no events, followers left alone
            targets, flux, onset_now = dict.fromkeys(self._smoothed, 0.0), 0.0, False
            self._recent_mel_db = []
            self._onset_armed = True

        for name, target in targets.items():
            level = self._smoothed[name]
            self._smoothed[name] = target if target >= level else target + (level - target) * self._release_keep

        self._envelope[self._envelope_end] = flux
        self._envelope_end = (self._envelope_end + 1) % len(self._envelope)
        self._hops_to_tempo_update -= 1
        if self._hops_to_tempo_update <= 0:
            self._hops_to_tempo_update = self._tempo_update_hops
            self._update_tempo(end_seconds)
        beat = self._track_beat(end_seconds, onset_now)

        period = self.period_seconds
        return AudioFeatures(
            time_seconds=end_seconds,
            **self._smoothed,
            beat=1.0 if beat else math.exp(-(end_seconds - self._last_beat_seconds) / self.config.beat_decay_seconds),
            onset_count=self.onset_count,
            beat_count=self.beat_count,
            bpm=60.0 / period if period else None,
            level_db=level_db,
        )

    def _signals(self, power: np.ndarray, level_rms: float) -> tuple[dict[str, float], float]:
        """The five level signals of a sounding window before smoothing (each in [0, 1]), and its flux above the
        running mean (the onset envelope the tempo is found in), dB."""
        config = self.config
        level_reference = self._level.update(level_rms)
        # Auto: the level follower is full scale. Manual: `gain` sets full scale, in units of the follower.
        scale = 1.0 if self.auto_gain else max(self.gain, 0.0) * level_reference / 10 ** (config.full_scale_db / 20)
        signals = {"rms": min(1.0, level_rms / level_reference * scale)}
        band_floor = config.band_floor * level_reference
        for name, bins in self._bands.items():
            band_rms = math.sqrt(float(power[bins].sum()))
            signals[name] = min(1.0, band_rms / max(self._band_levels[name].update(band_rms), band_floor) * scale)
        # The log-mel floor sits below the level that reads full scale: a quiet input keeps its range.
        floor_power = (level_reference / max(scale, 1e-12)) ** 2 * 10 ** (config.mel_floor_db / 10)
        mel_db = 10 * np.log10(np.maximum(self._mels @ power, floor_power))  # (n_mels,)
        lag = config.flux_lag_hops
        from_silence = len(self._recent_mel_db) < lag
        before = 10 * math.log10(floor_power) if from_silence else self._recent_mel_db[0]
        self._recent_mel_db = [*self._recent_mel_db, mel_db][-lag:]
        flux = float(np.mean(np.maximum(mel_db - before, 0.0)))  # librosa's onset strength: mean rise over the bands
        if from_silence:  # a sound out of silence rises from the floor: an onset, but no measure of the music's hits
            excess, reference = flux, self._flux_reference.value
        else:  # what rises above the flux's running mean (the flicker of noise, a pad's shimmer)
            excess = max(0.0, flux - self._flux_mean)
            self._flux_mean += (flux - self._flux_mean) * self._flux_mean_step
            reference = self._flux_reference.update(excess)
        signals["onset"] = min(1.0, self.sensitivity * excess / reference)
        return signals, excess

    def _detect_onset(self, strength: float, now_seconds: float) -> bool:
        """An onset when the strength crosses the threshold, once per crossing, and not within the minimum interval."""
        config = self.config
        threshold = config.onset_threshold
        if strength < threshold:
            self._onset_armed = True
            return False
        if not self._onset_armed or now_seconds - self._last_onset_seconds < config.min_onset_interval_seconds:
            return False
        self._onset_armed = False
        self._last_onset_seconds = now_seconds
        self.onset_count += 1
        return True

    def _ordered_envelope(self) -> np.ndarray:
        """The flux of the last tempo window, oldest first: (n,) float64."""
        return np.roll(self._envelope, -self._envelope_end).astype(np.float64)

    def _update_tempo(self, now_seconds: float) -> None:
        """Re-estimate the tempo from the envelope, then move the predicted beat onto the envelope's phase."""
        envelope = self._ordered_envelope()
        lag_hops = None
        if now_seconds - self._last_onset_seconds <= self.config.beat_hold_seconds:
            lag_hops = self._tempo_lag_hops(envelope)
        self._heard_period_seconds = lag_hops * self.hop_seconds if lag_hops else None
        if lag_hops:
            self._rephase(envelope, lag_hops, now_seconds)

    def _tempo_lag_hops(self, envelope: np.ndarray) -> float | None:
        """The beat period in hops (a fraction of a hop): the autocorrelation's strongest lag under the tempo prior,
        or within `tap_range` of a tapped tempo; None when no lag repeats enough to be a tempo."""
        config = self.config
        n = len(envelope)
        centred = envelope - envelope.mean()
        raw = np.fft.irfft(np.abs(np.fft.rfft(centred, 2 * n)) ** 2)[:n]  # (n,) by lag in hops
        # Summed over neighbouring lags: a period between two whole hops splits its peak in two.
        autocorrelation = np.convolve(raw, np.ones(3), mode="same")
        if autocorrelation[0] <= 0:
            return None
        lags = np.arange(n, dtype=np.float64)
        bpm = 60.0 / self.hop_seconds / np.maximum(lags, 1.0)
        fastest, slowest = config.max_bpm, config.min_bpm
        tapped_period_seconds = self._tap[2]
        if tapped_period_seconds is not None:
            tapped_bpm = 60.0 / tapped_period_seconds
            fastest, slowest = tapped_bpm * (1 + config.tap_range), tapped_bpm * (1 - config.tap_range)
        candidate = (bpm >= slowest) & (bpm <= fastest) & (lags >= 2) & (lags < n // 2)
        if not candidate.any():
            return None
        prior = np.exp(-0.5 * (np.log2(bpm / config.prior_bpm) / config.prior_octaves) ** 2)
        lag = int(np.argmax(np.where(candidate, autocorrelation * prior, -np.inf)))
        if autocorrelation[lag] / autocorrelation[0] < config.min_tempo_confidence:
            return None
        # Refined on the furthest multiple of the lag that still repeats strongly (a parabola through its peak),
        # divided back: each multiple divides the error of the hop grid (120 bpm is 46.875 hops at 48 kHz).
        for multiple in range((n // 2) // lag, 0, -1):
            around = multiple * lag
            peak = around - multiple + int(np.argmax(autocorrelation[around - multiple : around + multiple + 1]))
            if autocorrelation[peak] >= 0.5 * autocorrelation[lag]:
                break
        before, at, after = autocorrelation[peak - 1 : peak + 2]
        curvature = before - 2 * at + after
        shift = float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0
        return (peak + shift) / multiple

    def _rephase(self, envelope: np.ndarray, lag_hops: float, now_seconds: float) -> None:
        """Move the predicted beat onto the phase where a comb of the last `comb_beats` beats meets the most flux,
        when the prediction is off by more than the tolerance."""
        offsets = np.arange(int(lag_hops))  # hops back from the newest
        back = np.round(np.arange(self.config.comb_beats) * lag_hops).astype(np.int64)  # (beats,)
        index = len(envelope) - 1 - offsets[:, None] - back[None, :]  # (offsets, beats)
        scores = np.where(index >= 0, envelope[np.maximum(index, 0)], 0.0).sum(axis=1)
        period = lag_hops * self.hop_seconds
        last_beat = now_seconds - int(np.argmax(scores)) * self.hop_seconds
        predicted = last_beat + period * math.ceil((now_seconds - last_beat) / period + 1e-9)
        if predicted - self._last_beat_seconds < 0.5 * period:
            predicted += period
        off = (predicted - self._next_beat_seconds) / period
        if math.isinf(self._next_beat_seconds) or abs(off - round(off)) > self.config.beat_tolerance:
            self._next_beat_seconds = predicted

    def _track_beat(self, now_seconds: float, onset_now: bool) -> bool:
        """Whether a beat falls in this hop: a tap, an onset near the predicted beat, or the prediction itself."""
        serial, tap_seconds, tapped_period_seconds = self._tap
        tapped_now, self._taps_seen = serial != self._taps_seen, serial
        period = self.period_seconds
        if tapped_now:
            return self._beat(now_seconds, tap_seconds + period if period else None)
        heard = now_seconds - self._last_onset_seconds <= self.config.beat_hold_seconds
        if period is None or not (heard or tapped_period_seconds):
            return False
        tolerance_seconds = self.config.beat_tolerance * period
        if onset_now and now_seconds - self._last_beat_seconds <= tolerance_seconds:
            self._next_beat_seconds = now_seconds + period  # the beat fired a little early: follow the onset
            return False
        if onset_now and self._next_beat_seconds - now_seconds <= tolerance_seconds:
            return self._beat(now_seconds, now_seconds + period)  # the onset is the beat, a little before its time
        if now_seconds >= self._next_beat_seconds:
            following = self._next_beat_seconds + period
            return self._beat(now_seconds, max(following, now_seconds + 0.5 * period))
        return False

    def _beat(self, now_seconds: float, next_seconds: float | None) -> bool:
        self._last_beat_seconds = now_seconds
        self._next_beat_seconds = next_seconds if next_seconds is not None else math.inf
        self.beat_count += 1
        return True
