"""Clip writers: real files written and decoded back with PyAV (frames, timing, codecs, audio, memory)."""

import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from media import gradient_frames, write_video

from vjgan.errors import AudioError, RenderError
from vjgan.render.video import WriterOptions, open_writer
from vjgan.sizes import parse_frame_size_wh


def write_clip(path: Path, frames: np.ndarray, fps=30, chunk_frames: int = 8, **options) -> Path:
    with open_writer(path, WriterOptions(fps, (frames.shape[2], frames.shape[1]), **options)) as writer:
        for start in range(0, len(frames), chunk_frames):
            writer.write(frames[start : start + chunk_frames])
    return path


def decode(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return frames, stream


def stream_seconds(stream) -> float:
    return float(stream.duration * stream.time_base)


def write_tone(path: Path, seconds: float, sample_rate_hz: int = 44_100) -> Path:
    """A mono 440 Hz tone: the writer must resample it to 48 kHz stereo."""
    times = np.arange(round(seconds * sample_rate_hz)) / sample_rate_hz
    soundfile.write(str(path), (0.5 * np.sin(2 * np.pi * 440 * times)).astype(np.float32), sample_rate_hz)
    return path


def decode_audio(path: Path) -> tuple[np.ndarray, av.audio.stream.AudioStream]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray() for frame in container.decode(stream)], axis=1)
    return samples, stream


def test_h264_mp4_has_exact_frames_size_duration_and_colours(tmp_path):
    frames = gradient_frames(45, 128, 72)
    path = write_clip(tmp_path / "clip.mp4", frames)
    decoded, stream = decode(path)
    assert len(decoded) == 45 and decoded[0].shape == (72, 128, 3)
    assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    assert stream_seconds(stream) == pytest.approx(1.5, abs=1e-6)
    error = np.mean([np.abs(ours.astype(int) - original).mean() for ours, original in zip(decoded, frames)])
    assert error < 4  # right colour matrix and range: a BT.601/709 mix-up shifts colours far more
    assert not path.with_name("clip.mp4.partial").exists()


def test_ntsc_frame_rate_keeps_exact_timing(tmp_path):
    path = write_clip(tmp_path / "ntsc.mp4", gradient_frames(30, 64, 48), fps=Fraction(30000, 1001))
    decoded, stream = decode(path)
    assert len(decoded) == 30
    assert stream.average_rate == Fraction(30000, 1001)
    assert stream_seconds(stream) == pytest.approx(1.001, abs=1e-6)


def test_prores_mov_is_422_hq_10_bit(tmp_path):
    path = write_clip(tmp_path / "clip.mov", gradient_frames(12, 64, 48), codec="prores")
    decoded, stream = decode(path)
    assert len(decoded) == 12
    assert stream.codec_context.name == "prores" and stream.codec_context.pix_fmt == "yuv422p10le"
    assert stream.codec_context.profile == "HQ"
    assert stream_seconds(stream) == pytest.approx(0.4, abs=1e-6)


def test_longer_audio_is_muxed_as_aac_and_cut_to_the_video_duration(tmp_path):
    track = write_tone(tmp_path / "tone.wav", seconds=3.0)
    path = write_clip(tmp_path / "clip.mp4", gradient_frames(30, 64, 48), audio_path=track)
    samples, stream = decode_audio(path)
    assert stream.codec_context.name == "aac" and stream.rate == 48_000 and stream.channels == 2
    assert stream_seconds(stream) == pytest.approx(1.0, abs=1e-3)
    assert 48_000 <= samples.shape[1] < 48_000 + 1024  # at most the last AAC frame's padding
    assert np.sqrt(np.mean(samples[:, 2000:46000] ** 2)) > 0.2  # the tone in both channels (mono at -3 dB)


def test_shorter_audio_is_padded_with_silence_to_the_video_duration(tmp_path):
    track = write_tone(tmp_path / "short.wav", seconds=0.5)
    path = write_clip(tmp_path / "clip.mov", gradient_frames(45, 64, 48), codec="h264", audio_path=track)
    samples, stream = decode_audio(path)
    assert stream_seconds(stream) == pytest.approx(1.5, abs=1e-3)
    assert np.sqrt(np.mean(samples[:, 2000:22000] ** 2)) > 0.2
    assert np.abs(samples[:, 26000:72000]).max() < 0.01


def test_gif_keeps_frame_count_timing_and_fits_a_palette_per_stretch(tmp_path):
    ys, xs = np.mgrid[0:64, 0:96]
    frames = np.zeros((40, 64, 96, 3), np.uint8)
    frames[:20, ..., 0], frames[:20, ..., 1] = xs * 255 // 95, ys * 255 // 63  # a red-green plane, then
    frames[20:, ..., 2], frames[20:, ..., 1] = xs * 255 // 95, 255 - ys * 255 // 63  # a blue-green one
    path = write_clip(tmp_path / "clip.gif", frames, fps=10)  # 2 s palette stretches of 20 frames
    decoded, stream = decode(path)
    assert len(decoded) == 40
    assert stream_seconds(stream) == pytest.approx(4.0, abs=0.011)  # GIF delays are in 1/100 s
    errors = [np.abs(ours.astype(int) - original).mean() for ours, original in zip(decoded, frames)]
    assert max(errors) < 3.6  # one palette for both planes: 4.5 (each plane gets half the colours)


def test_png_folder_has_one_lossless_numbered_file_per_frame_and_drops_stale_frames(tmp_path):
    folder = tmp_path / "frames"
    write_clip(folder, gradient_frames(12, 64, 48))
    frames = gradient_frames(7, 64, 48, seed=3)
    write_clip(folder, frames)
    files = sorted(folder.glob("*.png"))
    assert [file.name for file in files] == [f"frame_{index:06d}.png" for index in range(7)]
    decoded = [np.asarray(av.open(str(file)).decode(video=0).__next__().to_ndarray(format="rgb24")) for file in files]
    assert all(np.array_equal(ours, original) for ours, original in zip(decoded, frames))


def test_long_1080p_clip_is_written_in_bounded_memory(tmp_path):
    n_frames, height, width = 300, 1080, 1920  # 1.9 GB of raw frames
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_writer(tmp_path / "long.mp4", WriterOptions(30, (width, height))) as writer:
        for start in range(0, n_frames, 5):
            level = np.uint8(start % 256)
            writer.write(np.full((5, height, width, 3), level, np.uint8))  # flat frames: quick to encode
    # Measured: 150-330 MiB of x264 state (it varies with the machine: 2026-12-04's CPU gave 360 MiB in all)
    # plus ~25 MiB per frame of chunk size (chunks queued and in flight); a writer holding the clip would grow 1.9 GB.
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib) / 1024
    assert growth_mib < 500, f"peak memory grew by {growth_mib:.0f} MiB"
    assert decode(tmp_path / "long.mp4")[1].frames == n_frames


def test_failed_render_leaves_no_file_behind(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_writer(path, WriterOptions(30, (64, 48))) as writer:
            writer.write(gradient_frames(4, 64, 48))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1920", "not WIDTHxHEIGHT"),
        ("wide", "not WIDTHxHEIGHT"),
        ("1921x1080", "even"),
        ("9000x5000", "larger"),
        ("8x8", "at least"),
    ],
)
def test_bad_sizes_are_refused_with_the_reason(text, reason):
    with pytest.raises(RenderError, match=reason):
        parse_frame_size_wh(text)


def test_sizes_parse_as_width_then_height():
    assert parse_frame_size_wh("1920x1080") == (1920, 1080)
    assert parse_frame_size_wh(" 1080X1920 ") == (1080, 1920)


@pytest.mark.parametrize(
    "name, options, reason",
    [
        ("clip.avi", {}, "unknown output type"),
        ("clip.mp4", {"codec": "vp9"}, "unknown codec"),
        ("clip.mp4", {"codec": "prores"}, "cannot be written as mp4"),
        ("clip.gif", {"codec": "prores"}, "cannot be written as gif"),
        ("clip.mp4", {"fmt": "gif"}, "needs a .gif file name"),
        ("clip.gif", {"audio_path": "any.wav"}, "cannot carry the audio"),
        ("clip.gif", {"fps": 60}, "too fast for GIF"),
    ],
)
def test_impossible_outputs_are_refused_before_anything_is_written(tmp_path, name, options, reason):
    fps = options.pop("fps", 30)
    with pytest.raises(RenderError, match=reason):
        open_writer(tmp_path / name, WriterOptions(fps, (64, 48), **options))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_path_fails_fast(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(RenderError, match="not-a-folder"):
        open_writer(blocker / "clip.mp4", WriterOptions(30, (64, 48)))
    with pytest.raises(RenderError, match="is a file"):
        open_writer(blocker, WriterOptions(30, (64, 48), fmt="png"))


def test_unreadable_or_silent_audio_tracks_fail_fast(tmp_path):
    with pytest.raises(AudioError, match="missing.wav"):
        open_writer(tmp_path / "a.mp4", WriterOptions(30, (64, 48), audio_path=tmp_path / "missing.wav"))
    video_only = write_video(tmp_path / "video-only.mp4", gradient_frames(3, 64, 48))
    with pytest.raises(AudioError, match="no audio stream"):
        open_writer(tmp_path / "b.mp4", WriterOptions(30, (64, 48), audio_path=video_only))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video-only.mp4"]


def test_clip_writer_imports_nothing_of_the_stages_that_use_it():
    """footage/synth, render and the live mode all write clips: the writer importing any stage (or torch) would
    make the packages import each other in a circle, and the footage commands pay for torch."""
    stages = ("vjgan.footage", "vjgan.model", "vjgan.run", "vjgan.train", "torch")
    code = f"import sys, vjgan.render.video; print(sorted(m for m in sys.modules if m.startswith({stages!r})))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
