"""footage/decode.py and geometry.py: real files of many codecs made with PyAV, decoded back."""

import os
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import gradient_frames, write_video

from vjgan.errors import FootageError
from vjgan.footage.decode import iter_frames, open_video, resample
from vjgan.footage.geometry import fit, plan_frame


def probe(path):
    """What a source is, as ingest learns it before decoding: the opened video's info."""
    with open_video(path) as video:
        return video.info


LOSSLESS = {"qp": "0"}  # libx264 keeps flat grey frames exact, so each frame's level names it
LEVEL_STEP = 4  # grey levels between consecutive numbered frames


def numbered_frames(n_frames: int, width: int = 32, height: int = 24) -> np.ndarray:
    """Flat grey frames whose level encodes their index: (N, H, W, 3) uint8."""
    levels = 8 + LEVEL_STEP * np.arange(n_frames)
    assert levels.max() <= 255
    return np.broadcast_to(levels[:, None, None, None], (n_frames, height, width, 3)).astype(np.uint8)


def frame_numbers(frames) -> list[int]:
    return [round((float(np.mean(f)) - 8) / LEVEL_STEP) for f in frames]


def timed(times, durations, fps=None):
    return [(Fraction(t), Fraction(d), i) for i, (t, d) in enumerate(zip(times, durations))]


def expand(pairs) -> list:
    return [item for item, repeats in pairs for _ in range(repeats)]


# -- resampling by presentation time (pure) --------------------------------------------------------


def test_resample_60_to_30_keeps_the_later_frame_of_each_pair():
    source = timed([Fraction(i, 60) for i in range(120)], [Fraction(1, 60)] * 120)
    kept = expand(resample(source, Fraction(30)))
    assert kept == list(range(0, 120, 2))


def test_resample_24_to_30_repeats_one_frame_in_four():
    source = timed([Fraction(i, 24) for i in range(48)], [Fraction(1, 24)] * 48)
    kept = expand(resample(source, Fraction(30)))
    assert len(kept) == 60
    assert sorted(set(kept)) == list(range(48))
    assert [kept.count(i) for i in range(8)] == [1, 2, 1, 1, 1, 2, 1, 1]


def test_resample_variable_rate_lands_on_an_even_clock():
    source = timed(["0", "0.01", "0.02", "0.5", "0.9"], ["0.01", "0.01", "0.48", "0.4", "0.1"])
    kept = expand(resample(source, Fraction(10)))
    assert kept == [2, 2, 2, 2, 2, 3, 3, 3, 3, 4]


def test_resample_gives_one_frame_for_a_single_instant_source():
    assert expand(resample(timed([5], [0]), Fraction(30))) == [0]


def test_resample_survives_timestamps_going_backwards():
    source = timed(["0", "0.2", "0.1", "0.3"], ["0.1"] * 4)
    kept = expand(resample(source, Fraction(10)))
    assert kept == [0, 0, 2, 3]  # the late frame 1 is replaced by frame 2, shown from slot 2


# -- geometry (pure) ----------------------------------------------------------------------------------


def test_center_crop_scales_the_height_and_crops_the_width_like_the_original_workflow():
    plan = plan_frame((640, 360), 96, "center")
    width = round(640 * 96 / 360)  # the original workflow's Pillow arithmetic
    assert plan.scale_wh == (width, 96)
    assert (plan.crop_top, plan.crop_left) == (0, (width - 96) // 2)


def test_center_crop_of_a_portrait_source_scales_the_width_and_crops_the_height():
    plan = plan_frame((360, 640), 96, "center")
    assert plan.scale_wh == (96, 171) and (plan.crop_top, plan.crop_left) == (37, 0)


def test_full_squashes_the_whole_frame():
    plan = plan_frame((1920, 1080), 64, "full")
    assert plan.scale_wh == (64, 64) and (plan.crop_top, plan.crop_left) == (0, 0)


def test_rotated_source_is_scaled_in_its_coded_orientation_and_cropped_after_the_turn():
    plan = plan_frame((640, 360), 96, "center", rotation_degrees=90)  # shown as 360x640 portrait
    assert plan.scale_wh == (171, 96) and plan.quarter_turns == 1
    assert (plan.crop_top, plan.crop_left) == (37, 0)
    scaled = np.arange(96 * 171 * 3, dtype=np.int64).reshape(96, 171, 3)
    fitted = fit(plan, scaled)
    assert fitted.shape == (96, 96, 3) and fitted.flags.c_contiguous
    assert np.array_equal(fitted, np.rot90(scaled)[37 : 37 + 96])


def test_anamorphic_pixels_keep_their_displayed_proportions():
    plan = plan_frame((720, 576), 96, "center", sample_aspect=64 / 45)  # PAL 16:9
    assert plan.scale_wh == (171, 96)


# -- real files -------------------------------------------------------------------------------------


def test_a_60fps_source_gives_every_second_frame(tmp_path):
    path = write_video(tmp_path / "sixty.mp4", numbered_frames(40), fps=60, options=LOSSLESS)
    frames = list(iter_frames(path, 30, 16, "center"))
    assert frame_numbers(frames) == list(range(0, 40, 2))


def test_a_24fps_source_repeats_frames_to_fill_30_per_second(tmp_path):
    path = write_video(tmp_path / "film.mp4", numbered_frames(24), fps=24, options=LOSSLESS)
    numbers = frame_numbers(iter_frames(path, 30, 16, "center"))
    assert len(numbers) == 30 and sorted(set(numbers)) == list(range(24))
    assert numbers == sorted(numbers)


def test_a_variable_rate_source_is_sampled_on_an_even_clock(tmp_path):
    times = [0.0, 0.02, 0.04, 0.3, 0.35, 0.7, 0.84]  # bursts and gaps; each frame lasts 33 ms
    path = write_video(tmp_path / "vfr.mkv", numbered_frames(7), timestamps_seconds=times, options=LOSSLESS)
    with open_video(path) as video:
        numbers = frame_numbers(video.frames(10, 16, "center"))
    # slot k (k/10 s) shows the latest frame whose time rounds to <= k (0.35 s rounds up); the clip
    # ends at 0.873 s, which rounds to 9 slots
    assert numbers == [2, 2, 2, 3, 4, 4, 4, 5, 6]


def test_fps_none_keeps_every_source_frame_once(tmp_path):
    path = write_video(tmp_path / "all.mp4", numbered_frames(12), fps=60, options=LOSSLESS)
    assert frame_numbers(iter_frames(path, None, 16, "center")) == list(range(12))


def test_frames_without_timestamps_are_placed_by_their_durations(tmp_path):
    path = write_video(tmp_path / "raw.h264", numbered_frames(10), fps=30, options=LOSSLESS)  # no timestamps
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).pts is None
    assert frame_numbers(iter_frames(path, 30, 16, "center")) == list(range(10))


def quadrant_frames(n_frames: int, width: int, height: int) -> np.ndarray:
    frames = np.zeros((n_frames, height, width, 3), np.uint8)
    frames[:, : height // 2, : width // 2] = (250, 20, 20)  # red top-left
    frames[:, : height // 2, width // 2 :] = (20, 250, 20)  # green top-right
    frames[:, height // 2 :, : width // 2] = (20, 20, 250)  # blue bottom-left
    frames[:, height // 2 :, width // 2 :] = (250, 250, 20)  # yellow bottom-right
    return frames


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_turns_the_picture_as_players_show_it(tmp_path, rotation):
    frames = quadrant_frames(3, 64, 32)
    upright = write_video(tmp_path / "upright.mp4", frames, options=LOSSLESS)
    turned = write_video(tmp_path / f"turned{rotation}.mp4", frames, rotation=rotation, options=LOSSLESS)
    info = probe(turned)
    assert info.rotation_degrees == rotation
    assert info.display_size_wh == ((32, 64) if rotation % 180 else (64, 32))
    expected = np.rot90(next(iter_frames(upright, 30, 16, "full")), rotation // 90).astype(int)
    actual = next(iter_frames(turned, 30, 16, "full")).astype(int)
    assert np.abs(actual - expected).mean() < 6


CODECS = [  # (file name, encoder, pixel format): the mixes footage folders really hold
    ("ten bit.mp4", "libx264", "yuv420p10le"),
    ("four-four-four.mp4", "libx264", "yuv444p"),
    ("prores.mov", "prores_ks", "yuv422p10le"),
    ("vp9.webm", "libvpx-vp9", "yuv420p"),
    ("h264.mkv", "libx264", "yuv420p"),
    ("xvid.avi", "mpeg4", "yuv420p"),
    ("loop.gif", "gif", "rgb8"),
]


@pytest.mark.parametrize("name, codec, pix_fmt", CODECS)
def test_any_codec_and_pixel_format_decodes_to_the_right_colours(tmp_path, name, codec, pix_fmt):
    colour = np.array([200, 60, 30] if codec != "gif" else [224, 64, 0], np.uint8)  # gif: an rgb8 palette colour
    frames = np.broadcast_to(colour, (6, 24, 32, 3)).copy()
    path = write_video(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt)
    decoded = np.stack(list(iter_frames(path, 30, 16, "center")))
    assert decoded.shape[1:] == (16, 16, 3) and len(decoded) >= 5
    assert np.abs(decoded.reshape(-1, 3).mean(0) - colour).max() < 10


def test_full_range_source_keeps_its_levels(tmp_path):
    frames = np.full((3, 32, 32, 3), 30, np.uint8)
    path = tmp_path / "camera.avi"
    with av.open(str(path), "w") as container:  # a motion-JPEG camera clip: full-range yuvj420p
        stream = container.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p", dst_color_range="JPEG")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    decoded = np.stack(list(iter_frames(path, 30, 16, "center")))
    assert abs(decoded.mean() - 30) < 2  # read as limited range it would come out near 16


def test_a_source_smaller_than_the_store_size_is_upscaled(tmp_path):
    path = write_video(tmp_path / "tiny.mp4", gradient_frames(4, 16, 12))
    frames = list(iter_frames(path, 30, 32, "center"))
    assert len(frames) == 4 and frames[0].shape == (32, 32, 3)


def test_a_4k_source_is_never_held_as_full_size_rgb(tmp_path):
    width, height = 3840, 2160
    frames = np.broadcast_to(np.array([90, 140, 200], np.uint8), (2, height, width, 3))
    path = write_video(tmp_path / "uhd.mp4", frames, options={"preset": "ultrafast"})
    full_rgb_bytes = width * height * 3
    tracemalloc.start()
    try:
        decoded = list(iter_frames(path, 30, 96, "center"))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(decoded) == 2 and decoded[0].shape == (96, 96, 3)
    assert peak_bytes < full_rgb_bytes / 8


def test_probe_describes_the_source(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gradient_frames(15, 48, 32), fps=30)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames_estimate) == (48, 32, 30.0, 15)
    assert info.duration_seconds == pytest.approx(0.5, abs=0.01)
    assert (info.pix_fmt, info.codec, info.rotation_degrees) == ("yuv420p", "h264", 0)


# -- damaged and unusable files -----------------------------------------------------------------------


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("name, container_options", [("cut.mkv", None), ("cut.mp4", {"movflags": "faststart"})])
def test_a_truncated_file_keeps_the_frames_before_the_cut_and_says_so(tmp_path, name, container_options):
    whole = frame_numbers(
        iter_frames(write_video(tmp_path / f"whole{name[-4:]}", numbered_frames(48), options=LOSSLESS), 30, 16, "center")
    )
    path = cut_in_half(write_video(tmp_path / name, numbered_frames(48), options=LOSSLESS, container_options=container_options))
    with open_video(path) as video:
        numbers = frame_numbers(video.frames(30, 16, "center"))
    assert 4 <= len(numbers) < 40 and numbers == whole[: len(numbers)]
    assert video.ending.truncated and "truncated" in video.ending.note
    assert video.ending.seconds_expected == pytest.approx(1.6, abs=0.05)


def test_whole_files_are_not_called_truncated(tmp_path):
    with open_video(write_video(tmp_path / "whole.mkv", gradient_frames(20, 32, 24))) as video:
        assert len(list(video.frames(30, 16, "center"))) == 20
    assert not video.ending.truncated and video.ending.note is None


def test_an_mp4_cut_before_its_index_is_refused_with_the_likely_cause(tmp_path):
    path = cut_in_half(write_video(tmp_path / "phone.mp4", gradient_frames(30, 32, 24)))
    with pytest.raises(FootageError, match="moov") as caught:
        probe(path)
    assert str(caught.value).startswith(str(path))


def write_audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 44100 // 4), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


def make_unusable(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("not a video at all\n" * 50)
    elif kind == "audio":
        write_audio_only(path)
    elif kind == "still":
        av.VideoFrame.from_ndarray(gradient_frames(1, 32, 24)[0], format="rgb24").to_image().save(path, format="PNG")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("empty", "empty file"),
        ("text", "not a video FFmpeg can read"),
        ("audio", "no video stream (audio only)"),
        ("still", "a still image"),
        ("directory", "a directory"),
        ("fifo", "not a regular file (a named pipe)"),
        ("missing", "no such file"),
    ],
)
def test_unusable_files_raise_one_line_errors_naming_the_file(tmp_path, kind, reason):
    path = make_unusable(tmp_path, kind)
    with pytest.raises(FootageError) as caught:
        probe(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


# -- damage in the middle: the frames after it are kept -------------------------------------------------


def damage_bytes(path, fraction: float, length_bytes: int = 64):
    """Overwrite `length_bytes` at `fraction` of the file with a fixed pattern (a real bit-damaged file)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * fraction)
    data[start : start + length_bytes] = bytes(range(length_bytes))
    path.write_bytes(bytes(data))
    return path


def test_an_mkv_damaged_in_the_middle_keeps_the_frames_after_the_damage_and_says_what_was_skipped(tmp_path):
    """Matroska skips to the next cluster after bad data (clusters of 0.7 s here; cameras write a few seconds)."""
    path = write_video(
        tmp_path / "hit.mkv",
        numbered_frames(60),
        options={**LOSSLESS, "g": "10"},
        container_options={"cluster_time_limit": "700"},
    )
    damage_bytes(path, 0.45)
    with open_video(path) as video:
        numbers = frame_numbers(video.frames(None, 16, "center"))
    assert numbers[-1] == 59 and 30 <= len(numbers) < 60  # the end is there, a cluster's worth is not
    assert numbers == sorted(numbers) and numbers[:5] == [0, 1, 2, 3, 4]
    assert not video.ending.truncated and video.ending.note.startswith("damaged: skipped ")
    assert "s of video; kept the frames before and after the damage" in video.ending.note


def write_video_with_audio(path, frames):
    """An mp4 with a silent AAC track beside the video, so the muxer interleaves them in many chunks."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30, options={**LOSSLESS, "g": "10"})
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=8000)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 8000 * len(frames) // 30), np.float32), format="fltp", layout="mono")
        silence.sample_rate, silence.pts = 8000, 0
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux([*audio.encode(silence), *video.encode(), *audio.encode()])
    return path


def test_an_mp4_whose_index_points_a_chunk_past_the_end_keeps_the_frames_after_it(tmp_path):
    """FFmpeg's mp4 reader takes a chunk placed past the end of the file for the end of the video; the
    frames whose chunks follow are read all the same."""
    path = write_video_with_audio(tmp_path / "index.mp4", numbered_frames(60))
    data = bytearray(path.read_bytes())
    table = data.find(b"stco")  # the video track's chunk offsets: version/flags, count, offsets
    chunks = int.from_bytes(data[table + 8 : table + 12], "big")
    middle = table + 12 + 4 * (chunks // 2)
    data[middle : middle + 4] = (0xFFFFFF00).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    with open_video(path) as video:
        numbers = frame_numbers(video.frames(None, 16, "center"))
    assert numbers[-1] == 59 and 40 <= len(numbers) < 60 and numbers == sorted(numbers)
    assert not video.ending.truncated and "unreadable stretch" in video.ending.note


def test_a_relative_name_that_looks_like_a_url_is_read_as_a_file(tmp_path, monkeypatch):
    write_video(tmp_path / "http:clip.mp4", gradient_frames(3, 32, 24))
    monkeypatch.chdir(tmp_path)
    assert len(list(iter_frames(Path("http:clip.mp4"), None, 16, "center"))) == 3
