"""HAP, HAP Q, HAP Alpha and DXV: real files from imageio-ffmpeg's FFmpeg, decoded back with PyAV."""

import dataclasses
import shutil
import signal

import av
import numpy as np
import pytest
from media import gradient_frames
from render_media import vjgan
from test_video import decode_audio, stream_seconds, write_clip, write_tone

from vjgan.errors import RenderError
from vjgan.render import video

# codec -> (FFmpeg decoder, fourcc, padded size of a 70x38 clip, mean abs error allowed in 8-bit levels)
EXPECTED = {
    "hap": ("hap", "Hap1", (72, 40), 7),  # DXT1: 4x4 blocks of two 5:6:5 colours
    "hap_q": ("hap", "HapY", (72, 40), 6),  # DXT5 in YCoCg: finer
    "hap_alpha": ("hap", "Hap5", (72, 40), 7),
    "dxv": ("dxv", "DXD3", (80, 48), 7),  # DXT1, padded to 16 for Resolume
}


def decode_rgba(path) -> tuple[np.ndarray, av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgba") for frame in container.decode(stream)])
    return frames, stream


def over_black(rgba: np.ndarray) -> np.ndarray:
    """What VJ software shows of a straight-alpha layer on black: colour x alpha."""
    return rgba[..., :3].astype(np.float32) * rgba[..., 3:] / 255


@pytest.mark.parametrize("codec", EXPECTED)
def test_vj_codec_decodes_with_exact_frames_padded_size_and_the_picture(tmp_path, codec, capsys):
    decoder, fourcc, padded_wh, tolerance = EXPECTED[codec]
    frames = gradient_frames(30, 70, 38)
    path = write_clip(tmp_path / "clip.mov", frames, codec=codec)
    decoded, stream = decode_rgba(path)
    assert (stream.codec_context.name, stream.codec_context.codec_tag) == (decoder, fourcc)
    assert len(decoded) == 30 and (stream.width, stream.height) == padded_wh
    assert stream_seconds(stream) == pytest.approx(1.0, abs=1e-6)
    picture = over_black(decoded) if codec == "hap_alpha" else decoded[..., :3].astype(np.float32)
    assert np.abs(picture[:, :38, :70] - frames).mean() < tolerance
    assert "{}: padded 70x38 -> {}x{} (multiples of".format(codec, *padded_wh) in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mov"]


def test_sizes_already_in_whole_blocks_are_not_padded(tmp_path, capsys):
    path = write_clip(tmp_path / "clip.mov", gradient_frames(3, 96, 48), codec="dxv")
    assert decode_rgba(path)[0].shape == (3, 48, 96, 4)
    assert "padded" not in capsys.readouterr().err


def test_hap_alpha_makes_black_transparent_and_keeps_saturated_colours_opaque(tmp_path):
    frames = np.zeros((4, 32, 64, 3), np.uint8)
    frames[:, 8:24, 8:24] = (0, 0, 255)  # pure blue: luminance would make it nearly transparent
    frames[:, 8:24, 40:56] = (96, 64, 32)  # a dim glow
    decoded, stream = decode_rgba(write_clip(tmp_path / "particles.mov", frames, codec="hap_alpha"))
    assert stream.codec_context.pix_fmt == "rgba"
    alpha = decoded[..., 3].astype(int)
    assert alpha[:, :, 26:38].max() <= 4 and alpha[:, 26:].max() <= 4  # the black background
    assert alpha[:, 10:22, 10:22].min() >= 250 and np.abs(alpha[:, 10:22, 42:54] - 96).max() <= 4
    assert np.abs(over_black(decoded) - frames).mean() < 3  # over black the layer is the frame


@pytest.mark.parametrize("track_seconds, video_frames", [(3.0, 30), (0.5, 45)], ids=["cut", "padded"])
def test_audio_track_is_muxed_as_aac_with_the_videos_exact_duration(tmp_path, track_seconds, video_frames):
    track = write_tone(tmp_path / "tone.wav", seconds=track_seconds)
    path = write_clip(tmp_path / "clip.mov", gradient_frames(video_frames, 64, 48), codec="hap", audio_path=track)
    samples, stream = decode_audio(path)
    seconds = video_frames / 30
    assert stream.codec_context.name == "aac" and stream.rate == 48_000 and stream.channels == 2
    assert stream_seconds(stream) == pytest.approx(seconds, abs=1e-3)
    assert round(seconds * 48_000) <= samples.shape[1] < round(seconds * 48_000) + 1024  # as the PyAV writer
    assert np.sqrt(np.mean(samples[:, 2000:22000] ** 2)) > 0.2  # the tone
    assert len(decode_rgba(path)[0]) == video_frames


def test_audio_and_video_reach_ffmpeg_on_stdin_alone(tmp_path):
    """No second pipe (Windows gives a child none): FFmpeg's one input is a NUT stream on stdin with both."""
    track = write_tone(tmp_path / "tone.wav", seconds=1.0)
    writer = video.open_writer(tmp_path / "clip.mov", video.WriterOptions(30, (64, 48), codec="hap", audio_path=track))
    with writer:
        writer.write(gradient_frames(6, 64, 48))
        args = writer._encoder.ffmpeg.process.args
    assert [arg for arg in args if arg.startswith("pipe:")] == ["pipe:0"] and args[args.index("-i") - 2 :][:3] == [
        "-f",
        "nut",
        "-i",
    ]
    assert args.count("-i") == 1
    samples, stream = decode_audio(tmp_path / "clip.mov")
    assert stream_seconds(stream) == pytest.approx(0.2, abs=1e-3) and len(decode_rgba(tmp_path / "clip.mov")[0]) == 6


@pytest.mark.parametrize("with_audio", [False, True], ids=["video", "video+audio"])
def test_failing_ffmpeg_raises_one_line_with_its_reason_and_leaves_no_clip(tmp_path, monkeypatch, with_audio):
    monkeypatch.setitem(video.CODECS, "hap", dataclasses.replace(video.CODECS["hap"], options={"format": "nonsense"}))
    track = write_tone(tmp_path / "tone.wav", seconds=1.0) if with_audio else None
    out = tmp_path / "out"
    with pytest.raises(RenderError) as error:
        write_clip(out / "clip.mov", gradient_frames(24, 256, 144), codec="hap", audio_path=track)  # frames over a pipe's 64 KiB
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{out / 'clip.mov'}: FFmpeg failed") and "nonsense" in message
    assert list(out.iterdir()) == []


def test_ffmpeg_dying_mid_clip_is_an_error_and_leaves_no_clip(tmp_path):
    path = tmp_path / "clip.mov"
    writer = video.open_writer(path, video.WriterOptions(30, (256, 144), codec="hap_q"))
    writer.write(gradient_frames(8, 256, 144))
    writer._encoder.ffmpeg.process.send_signal(signal.SIGKILL)
    with pytest.raises(RenderError, match="clip.mov: FFmpeg failed"):
        with writer:
            for _ in range(4):
                writer.write(gradient_frames(8, 256, 144))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_render_leaves_no_clip(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with video.open_writer(tmp_path / "clip.mov", video.WriterOptions(30, (64, 48), codec="dxv")) as writer:
            writer.write(gradient_frames(4, 64, 48))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_unusable_ffmpeg_binary_names_the_codec_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(RenderError, match="codec hap_q: cannot run FFmpeg .*pip install imageio-ffmpeg"):
        video.open_writer(tmp_path / "clip.mov", video.WriterOptions(30, (64, 48), codec="hap_q"))
    assert list(tmp_path.iterdir()) == []


def test_vj_codecs_only_go_in_mov(tmp_path):
    with pytest.raises(RenderError, match="codec hap cannot be written as mp4; name the file .mov"):
        video.open_writer(tmp_path / "clip.mp4", video.WriterOptions(30, (64, 48), codec="hap"))


def test_render_loop_with_hap_writes_a_mov_by_default(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, err = vjgan(capsys, "render", "loop", run, "--size", "70x38", "--seconds", "0.5", "--seed", "2", "--codec", "hap")
    assert code == 0 and "hap: padded 70x38 -> 72x40 (multiples of 4)" in err
    frames, stream = decode_rgba(run / "clips" / "loop-2.mov")
    assert (stream.codec_context.name, frames.shape) == ("hap", (15, 40, 72, 4))
    assert frames[:, :38, :70, :3].std() > 5  # the generator's picture, not a blank


def test_generate_with_hap_says_once_that_it_pads(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, err = vjgan(capsys, "generate", run, "--count", "3", "--seconds", "0.2", "--size", "70x38", "--codec", "hap")
    assert code == 0 and err.count("hap: padded 70x38 -> 72x40") == 1
    assert len(list((run / "clips").glob("loops-*/loop-*.mov"))) == 3
