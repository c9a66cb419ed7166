"""`vjgan demo`: the whole path end to end at smoke size, its files decoded back, and re-runs that reuse or resume."""

import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import write_frame_store
from media import gradient_frames
from PIL import Image
from render_media import decode_clip, vjgan

from vjgan.demo import (
    CLIP_KINDS,
    CONTACT_CELL_PX,
    CONTACT_LABEL_PX,
    LOOP_COLUMNS,
    PROFILES,
    REAL_COLUMNS,
    SNAPSHOT_COLUMNS,
    TRAINED_STAMP,
    DemoConfig,
    DemoPaths,
    Stages,
    claim_folder,
    next_commands,
    progress_frames_per_snapshot,
    train_genre,
    trained_minutes,
)
from vjgan.errors import VjganError
from vjgan.footage.store import FrameStore
from vjgan.run import checkpoint as ckpt
from vjgan.run.snapshots import SnapshotStore

SMOKE = PROFILES["smoke"]
GENRES = SMOKE.synth.genres


def visible_files(root: Path) -> dict[str, int]:
    """Every file the user sees under `root` (no hidden ones), relative path -> modification time (ns)."""
    return {
        path.relative_to(root).as_posix(): path.stat().st_mtime_ns
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


def test_demo_makes_every_promised_file_and_a_second_run_reuses_them(tmp_path, capsys):
    out = tmp_path / "demo"
    code, printed = vjgan(capsys, "demo", "--out", out, "--smoke", "--device", "cpu")  # the smoke profile's own budget
    assert code == 0, printed
    paths = DemoPaths(out)
    for genre in GENRES:  # --smoke trains for seconds, not the CPU profile's 6 minutes
        stamped = json.loads((paths.run(genre) / TRAINED_STAMP).read_text())["minutes"]
        assert stamped == pytest.approx(SMOKE.minutes_total / len(GENRES)) and stamped < 0.1
    width, height = SMOKE.render.frame_size_wh
    fps = SMOKE.render.fps

    synth_w, synth_h = SMOKE.synth.frame_size_wh
    for genre in GENRES:
        footage = sorted((paths.footage / genre).glob("*.mp4"))
        assert len(footage) == SMOKE.synth.clips_per_genre
        for source in footage:
            assert decode_clip(source).frames.shape == (SMOKE.synth.n_frames, synth_h, synth_w, 3)
        assert FrameStore.open(paths.store(genre)).size_px == (SMOKE.size_px, SMOKE.size_px)
        clips = {kind: decode_clip(paths.clip(genre, kind)) for kind in CLIP_KINDS}
        for kind, clip in clips.items():
            assert clip.frames.shape[1:] == (height, width, 3), f"{genre} {kind}"
            assert clip.codec == "h264" and clip.fps == fps
            # The mp4 header holds the duration to the millisecond (its edit list's movie timescale).
            assert clip.seconds == pytest.approx(len(clip.frames) / fps, abs=1e-3)
        n_snapshots = len(SnapshotStore.open(paths.run(genre)))
        assert n_snapshots >= 1  # at least the untrained bank
        assert len(clips["progress"].frames) == n_snapshots * progress_frames_per_snapshot(SMOKE, n_snapshots)
        assert len(clips["loop"].frames) == round(SMOKE.loop_seconds * fps)
        assert len(clips["audio"].frames) == round(SMOKE.music_seconds * fps)
        assert clips["audio"].audio_codec == "aac" and clips["audio"].audio_seconds == pytest.approx(
            SMOKE.music_seconds, abs=1 / fps
        )
        assert clips["loop"].frames.std() > 1  # a picture, not a blank frame

    with av.open(str(paths.music)) as track:
        samples = sum(frame.samples for frame in track.decode(audio=0))
        assert samples / track.streams.audio[0].sample_rate == pytest.approx(SMOKE.music_seconds)

    with Image.open(paths.contact_sheet) as sheet:
        columns = REAL_COLUMNS + len(SNAPSHOT_COLUMNS) + LOOP_COLUMNS
        assert sheet.size == (5 * CONTACT_LABEL_PX + columns * CONTACT_CELL_PX, CONTACT_LABEL_PX + len(GENRES) * CONTACT_CELL_PX)
        pixels = np.asarray(sheet.convert("RGB")).astype(float)
    for row in range(len(GENRES)):  # each genre's real frames are there, and its loop's frames are pictures
        top, left = CONTACT_LABEL_PX + row * CONTACT_CELL_PX, 5 * CONTACT_LABEL_PX
        real = pixels[top : top + CONTACT_CELL_PX, left : left + REAL_COLUMNS * CONTACT_CELL_PX]
        loop = pixels[top : top + CONTACT_CELL_PX, left + (columns - LOOP_COLUMNS) * CONTACT_CELL_PX :]
        assert real.std() > 5 and loop.std() > 1
    with Image.open(paths.curves) as curves:
        assert curves.format == "PNG" and curves.height > curves.width  # losses above SWD

    readme = paths.readme.read_text()
    listed = {line.split()[0] for line in readme.splitlines() if line and not line.startswith((" ", "vjgan demo:", "Next"))}
    assert listed == set(visible_files(out))  # every file, and only files that exist
    assert "vjgan ingest" in readme and "vjgan train" in readme and "vjgan render audio" in readme
    assert "vjgan train data/GENRE" in printed and str(paths.contact_sheet) in printed

    before = visible_files(out)
    code, printed = vjgan(capsys, "demo", "--out", out, "--minutes", "0.1", "--smoke", "--device", "cpu")
    assert code == 0, printed
    assert visible_files(out) == before  # nothing made again, nothing added
    reused = [line for line in printed.splitlines() if line.startswith("reused ")]
    assert len(reused) == 2 + len(GENRES) * (1 + len(CLIP_KINDS)) + 2  # footage, stores, runs, music, clips, index


@pytest.fixture
def one_genre_demo(tmp_path) -> DemoPaths:
    """A demo folder whose only genre, "gradients", already has a 32 px frame store (no footage needed)."""
    paths = DemoPaths(tmp_path / "demo")
    write_frame_store(paths.store("gradients"), gradient_frames(24, 32, 32))
    return paths


def images_seen(run_dir: Path) -> int:
    return ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))["counters"]["images_seen"]


def test_training_is_reused_within_its_budget_and_continues_when_the_budget_grows(one_genre_demo):
    run_dir = one_genre_demo.run("gradients")
    stages = Stages(total=3)
    train_genre(one_genre_demo, SMOKE, "gradients", 0.01, "cpu", stages)
    first = images_seen(run_dir)
    assert first > 0 and trained_minutes(run_dir) >= 0.01  # more when the first steps overran the budget

    train_genre(one_genre_demo, SMOKE, "gradients", 0.01, "cpu", stages)
    assert images_seen(run_dir) == first and len(stages.reused) == 1

    larger = trained_minutes(run_dir) + 0.01
    train_genre(one_genre_demo, SMOKE, "gradients", larger, "cpu", stages)
    assert images_seen(run_dir) > first and trained_minutes(run_dir) >= larger


def test_training_stopped_before_the_demo_noted_it_resumes_for_what_is_left(one_genre_demo):
    """A demo killed while training leaves checkpoints but no stamp: the run's training time so far counts."""
    run_dir = one_genre_demo.run("gradients")
    train_genre(one_genre_demo, SMOKE, "gradients", 0.01, "cpu", Stages(total=2))
    first = images_seen(run_dir)
    (run_dir / TRAINED_STAMP).unlink()
    trained = trained_minutes(run_dir)
    assert trained == ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))["counters"]["seconds"] / 60 > 0

    train_genre(one_genre_demo, SMOKE, "gradients", trained + 0.01, "cpu", Stages(total=2))
    assert images_seen(run_dir) > first
    assert json.loads((run_dir / TRAINED_STAMP).read_text())["minutes"] == pytest.approx(trained + 0.01)


def test_a_folder_made_with_other_settings_or_not_by_the_demo_is_refused(tmp_path):
    paths = DemoPaths(tmp_path / "demo")
    claim_folder(paths, SMOKE)
    claim_folder(paths, SMOKE)  # the same settings: the demo resumes
    with pytest.raises(VjganError, match=f"{paths.root}: holds a demo made with other settings"):
        claim_folder(paths, dataclasses.replace(SMOKE, loop_seconds=2.0))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(VjganError, match="not empty and not a vjgan demo folder"):
        claim_folder(DemoPaths(tmp_path / "mine"), SMOKE)


@pytest.mark.parametrize("minutes", ["0", "-1", "nan"])
def test_bad_minutes_are_a_one_line_error(tmp_path, capsys, minutes):
    code, printed = vjgan(capsys, "demo", "--out", tmp_path / "demo", "--minutes", minutes)
    assert code == 1
    assert printed.strip() == f"vjgan: error: demo --minutes {float(minutes)}: give a positive number of minutes"
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(("profile", "advised"), [("cpu", "modern2"), ("gpu", "seed96")])
def test_the_advised_training_command_is_one_that_runs(tmp_path, capsys, profile, advised):
    """The demo's few minutes want its own settings; an hour on one's own footage wants the preset README advises."""
    command = next(line for line in next_commands(PROFILES[profile]) if line.startswith("vjgan train"))
    args = command.split("#")[0].split()[1:]
    assert args[args.index("--preset") + 1] == advised
    args[args.index("--run") + 1] = str(tmp_path / "run")
    code, printed = vjgan(capsys, *args, "--dry-run", "--device", "cpu")
    assert code == 0 and printed.startswith("dry run on cpu"), printed


def test_default_demo_is_the_cpu_profile_without_cuda():
    assert DemoConfig(device="cpu").resolve_profile() == PROFILES["cpu"]
    assert DemoConfig(device="cpu", profile="smoke").resolve_profile() == SMOKE


def test_an_output_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    code, printed = vjgan(capsys, "demo", "--out", tmp_path / "taken", "--smoke")
    assert code == 1 and printed.strip() == f"vjgan: error: {tmp_path / 'taken'}: not a folder; give another --out"
