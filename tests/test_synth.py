"""`vjgan synth`: procedural footage written as real H.264 files, decoded back with PyAV."""

import math
from pathlib import Path

import av
import numpy as np
import pytest

from vjgan.cli import main
from vjgan.errors import VjganError
from vjgan.footage.synth import GENRES, STYLES, SynthConfig, typo, write_synth_footage
from vjgan.footage.synth.light import Clip, add_glow, neon_palette, tone_map

TINY = dict(seconds=0.5, frame_size_wh=(128, 72), clips_per_genre=1)


def decode(path: Path) -> np.ndarray:
    """All frames of `path`, (N, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_clips_are_h264_mp4_in_genre_folders_with_requested_frames_size_and_fps(tmp_path):
    config = SynthConfig(seconds=0.4, frame_size_wh=(96, 64), fps=25, clips_per_genre=2)
    paths = write_synth_footage(tmp_path, config)

    assert len(paths) == len(GENRES) * 2
    assert sorted({p.parent.name for p in paths}) == sorted(GENRES)
    assert sorted(tmp_path.rglob("*")) == sorted(paths + [tmp_path / g for g in GENRES])  # no temporary files left
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.format.name) == ("h264", "yuv420p")
            assert (stream.width, stream.height) == (96, 64)
            assert stream.average_rate == 25
            assert sum(1 for _ in container.decode(video=0)) == 10  # 0.4 s x 25 fps


def test_same_seed_gives_identical_decoded_frames(tmp_path):
    first = write_synth_footage(tmp_path / "a", SynthConfig(seed=3, **TINY))
    second = write_synth_footage(tmp_path / "b", SynthConfig(seed=3, **TINY))
    for a, b in zip(first, second, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(decode(a), decode(b))


def test_a_clip_does_not_depend_on_which_other_genres_are_written(tmp_path):
    everything = write_synth_footage(tmp_path / "all", SynthConfig(seed=4, **TINY))
    [typo_only] = write_synth_footage(tmp_path / "typo", SynthConfig(seed=4, **TINY, genres=("typo",)))
    [same] = [p for p in everything if p.parent.name == "typo"]
    np.testing.assert_array_equal(decode(same), decode(typo_only))


def test_different_seeds_give_different_clips(tmp_path):
    first = write_synth_footage(tmp_path / "a", SynthConfig(seed=0, **TINY))
    second = write_synth_footage(tmp_path / "b", SynthConfig(seed=1, **TINY))
    for a, b in zip(first, second, strict=True):
        difference = np.abs(decode(a).astype(np.int16) - decode(b)).mean()
        assert difference > 5, f"{a.name} vs {b.name}: mean difference {difference:.1f} of 255"


def test_clips_of_a_genre_differ_from_each_other(tmp_path):
    paths = write_synth_footage(tmp_path, SynthConfig(**{**TINY, "clips_per_genre": 3}, genres=("geometry",)))
    frames = [decode(p) for p in paths]
    assert len({p.name for p in paths}) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(frames[i].astype(np.int16) - frames[j]).mean() > 5


def genre_features(frames: np.ndarray) -> np.ndarray:
    """Simple look statistics of a clip: share of edge energy on horizontal/vertical edges (text),
    frame-to-frame change relative to edge strength (whole-frame motion), share of dark pixels,
    edge strength relative to brightness."""
    luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, H, W)
    gx, gy = np.diff(luma, axis=2)[:, :-1], np.diff(luma, axis=1)[:, :, :-1]
    magnitude = np.hypot(gx, gy) + 1e-6
    angle = np.abs(np.arctan2(gy, gx)) % (np.pi / 2)
    axis_aligned = (angle < np.pi / 18) | (angle > np.pi / 2 - np.pi / 18)
    return np.array(
        [
            (magnitude * axis_aligned).sum() / magnitude.sum(),
            np.abs(np.diff(luma, axis=0)).mean() / magnitude.mean(),
            (luma < 24).mean(),
            magnitude.mean() / (luma.mean() + 1),
        ]
    )


def test_genres_are_told_apart_by_simple_statistics_across_seeds(tmp_path):
    """A nearest-centroid classifier fitted on one seed's clips recognises the genre of another
    seed's clips (different styles, palettes and words): the genres differ in look, not by chance."""
    features = {}
    for seed in (0, 1):
        config = SynthConfig(seed=seed, **{**TINY, "clips_per_genre": 3})
        for path in write_synth_footage(tmp_path / str(seed), config):
            features.setdefault(seed, []).append((path.parent.name, genre_features(decode(path))))
    scale = np.std([f for clips in features.values() for _, f in clips], axis=0)
    centroids = {g: np.mean([f for genre, f in features[0] if genre == g], axis=0) / scale for g in GENRES}
    predicted = [(genre, min(GENRES, key=lambda g: np.linalg.norm(f / scale - centroids[g]))) for genre, f in features[1]]
    correct = sum(genre == guess for genre, guess in predicted)
    assert correct >= 8, predicted  # chance is 3 of 9


@pytest.mark.parametrize("genre,style", [(g, s) for g in GENRES for s in STYLES[g]], ids=lambda x: getattr(x, "__name__", x))
def test_every_style_loops_seamlessly_and_moves(genre, style):
    """The frame after the last one (phase 2 pi) is the first one again, while the frames between differ."""
    rng = np.random.default_rng(5)
    clip = Clip((128, 72), n_frames=30, seconds=1.0, palette=neon_palette(rng))
    draw, glow_gain = style(clip, rng)
    start, end, *between = (tone_map(add_glow(draw(phase), glow_gain)).astype(np.int16) for phase in (0.0, 2 * math.pi, 1.3, 4.1))
    assert np.abs(start - end).mean() < 0.5
    assert all(np.abs(start - frame).mean() > 3 for frame in between)
    assert start.max() > 120  # something shines


def test_typography_falls_back_to_pillows_own_font_without_system_fonts(tmp_path, monkeypatch):
    monkeypatch.setattr(typo, "BOLD_FONT_FILES", ("no-such-font-file.ttf",))
    typo.bold_font.cache_clear()
    try:
        [path] = write_synth_footage(tmp_path, SynthConfig(**TINY, genres=("typo",)))
        assert decode(path).max() > 200
    finally:
        typo.bold_font.cache_clear()


def test_output_that_cannot_be_created_names_the_path(tmp_path):
    blocker = tmp_path / "footage"
    blocker.write_text("a file where the folder should go")
    with pytest.raises(VjganError, match="footage/particles"):
        write_synth_footage(blocker, SynthConfig(**TINY, genres=("particles",)))


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"frame_size_wh": (0, 10)}, "0x10"),
        ({"frame_size_wh": (641, 360)}, "even"),
        ({"seconds": 0.01}, "two frames"),
        ({"seconds": math.nan}, "two frames"),
        ({"fps": 0}, "fps"),
        ({"clips_per_genre": 0}, "clips per genre"),
        ({"seed": -1}, "seed"),
        ({"genres": ("particles", "jazz")}, "jazz"),
    ],
)
def test_config_rejects_impossible_settings(changes, reason):
    with pytest.raises(VjganError, match=reason):
        SynthConfig(**changes)


def test_cli_writes_footage_with_flags_overriding_defaults(tmp_path, capsys):
    code = main(["synth", str(tmp_path), "--seconds", "0.2", "--size", "64x48", "--seed", "2", "--clips", "1", "--genre", "typo"])
    assert code == 0
    [path] = sorted(tmp_path.rglob("*.mp4"))
    assert path.parent.name == "typo"
    assert decode(path).shape == (6, 48, 64, 3)
    assert "wrote 1 clips" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["640", "640x", "axb", "640x360x2", "0x10", "641x360"])
def test_cli_rejects_bad_size_on_one_line_before_writing_anything(tmp_path, capsys, size):
    assert main(["synth", str(tmp_path / "out"), "--size", size]) == 1
    err = capsys.readouterr().err
    assert f"size {size!r}" in err or f"size {size}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
