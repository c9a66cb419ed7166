"""Several stores as one run, a run per genre in one command, and generate / render over several runs."""

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from media import gradient_frames
from render_media import vjgan
from test_train import make_store

from vjgan.evaluate import read_report_rows
from vjgan.run import checkpoint as ckpt
from vjgan.run.directory import read_config_toml
from vjgan.train.data import draw_frame_indices, load_training_data
from vjgan.train.distributed import World

TINY_FLAGS = ("--size", "32", "--width", "4", "--z-dim", "8", "--batch-size", "8", "--noise-bank", "4")
TINY_FLAGS += ("--snapshot-every", "32", "--checkpoint-every", "64", "--log-every", "4", "--precision", "fp32", "--device", "cpu")


def constant_store(path: Path, colour: tuple[int, int, int], n_frames: int, size_px: int = 32) -> Path:
    frames = np.empty((n_frames, size_px, size_px, 3), np.uint8)
    frames[:] = colour
    return make_store(path, frames)


def test_two_stores_train_as_one_pool_recorded_and_checked_at_resume(tmp_path, capsys):
    red = constant_store(tmp_path / "here" / "red", (255, 0, 0), 4)
    blue = constant_store(tmp_path / "there" / "blue", (0, 0, 255), 12)
    run_dir = tmp_path / "run"
    code, err = vjgan(capsys, "train", red, blue, "--run", run_dir, "--images", "32", "--balance", "sources", *TINY_FLAGS)
    assert code == 0, err

    config = read_config_toml(run_dir / "config.toml")
    assert config.stores == (str(red.resolve()), str(blue.resolve()))
    assert [record["genre"] for record in json.loads((run_dir / "store.json").read_text())] == ["red", "blue"]

    # The pool: both stores' frames, each source a span of its own, so balanced draws reach both equally.
    real = load_training_data(config, World(rank=0, size=1, device=torch.device("cpu")))
    assert real.frames.shape == (16, 32, 32, 3) and real.source_spans.tolist() == [[0, 4], [4, 12]]
    drawn = draw_frame_indices(len(real.frames), 400, torch.Generator().manual_seed(0), real.source_spans)
    from_red = (real.frames[drawn][:, 0, 0, 0] == 255).float().mean().item()
    assert 0.4 < from_red < 0.6  # a source uniformly, though red holds a quarter of the frames

    # Resume checks every store: the same two continue, one of them alone is refused in one line.
    code, err = vjgan(capsys, "train", red, "--run", run_dir, "--images", "48", "--balance", "sources", *TINY_FLAGS)
    assert code == 1 and "trained on 2 store(s)" in err and len(err.strip().splitlines()) == 1
    code, err = vjgan(capsys, "train", red, blue, "--run", run_dir, "--images", "48", "--balance", "sources", *TINY_FLAGS)
    assert code == 0, err
    assert ckpt.read_counters(ckpt.latest_checkpoint(run_dir)).images_seen == 48


def test_a_run_of_one_store_keeps_its_single_store_record(tmp_path, capsys):
    store = constant_store(tmp_path / "red", (255, 0, 0), 4)
    code, err = vjgan(capsys, "train", store, "--run", tmp_path / "run", "--images", "16", *TINY_FLAGS)
    assert code == 0, err
    assert read_config_toml(tmp_path / "run" / "config.toml").store == str(store.resolve())
    assert json.loads((tmp_path / "run" / "store.json").read_text())["genre"] == "red"


def test_stores_of_different_sizes_are_one_line_naming_both(tmp_path, capsys):
    small = constant_store(tmp_path / "small", (255, 0, 0), 4, size_px=32)
    large = constant_store(tmp_path / "large", (0, 0, 255), 4, size_px=48)
    code, err = vjgan(capsys, "train", small, large, "--run", tmp_path / "run", "--images", "16")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert str(small) in err and str(large) in err and "48x48" in err and "32x32" in err
    assert not (tmp_path / "run").exists()


def test_every_genre_trains_in_turn_resumes_as_a_whole_and_a_broken_one_does_not_stop_the_others(tmp_path, capsys):
    data, runs = tmp_path / "data", tmp_path / "runs"
    make_store(data / "ambient", gradient_frames(8, 32, 32, seed=1))
    make_store(data / "broken", np.empty((0, 32, 32, 3), np.uint8))  # an empty store
    make_store(data / "techno", gradient_frames(8, 32, 32, seed=2))
    (data / "notes").mkdir()  # not a store: passed over

    # A time budget too short for the schedule: each genre stops early, and the table says how far it got.
    code, err = vjgan(capsys, "train", data, "--runs", runs, "--images", "64", "--minutes-per-genre", "0.0001", *TINY_FLAGS)
    assert code == 1  # one genre failed
    assert sum("broken" in line and "empty" in line for line in err.splitlines()) == 1
    assert sorted(path.name for path in runs.iterdir()) == ["ambient", "techno"]
    seen = {genre: ckpt.read_counters(ckpt.latest_checkpoint(runs / genre)).images_seen for genre in ("ambient", "techno")}
    assert all(0 < images < 64 for images in seen.values())
    assert "ambient" in err and "techno" in err and "failed" in err

    # Re-running continues each run to its schedule ...
    code, err = vjgan(capsys, "train", data, "--runs", runs, "--images", "64", *TINY_FLAGS)
    assert code == 1
    for genre in ("ambient", "techno"):
        assert ckpt.read_counters(ckpt.latest_checkpoint(runs / genre)).images_seen == 64
    assert err.count("done") == 2

    # ... and passes over finished runs without training them again; SWD is the one `vjgan eval` measured.
    logs = {genre: (runs / genre / "log.jsonl").read_bytes() for genre in ("ambient", "techno")}
    assert vjgan(capsys, "eval", runs / "ambient")[0] == 0
    code, err = vjgan(capsys, "train", data, "--runs", runs, "--images", "64", *TINY_FLAGS)
    assert code == 1 and err.count("done") == 2
    swd = read_report_rows(runs / "ambient")[-1]["swd_x1e3"]
    assert sum(f"{swd:.1f} @ 64" in line and "ambient" in line for line in err.splitlines()) == 1
    assert {genre: (runs / genre / "log.jsonl").read_bytes() for genre in logs} == logs


def test_generate_and_render_go_over_several_runs_and_a_failing_one_is_one_line(tiny_run, tmp_path, capsys):
    runs = [tmp_path / "runs" / name for name in ("one", "two")]
    for run_dir in runs:
        shutil.copytree(tiny_run, run_dir)
    missing = tmp_path / "runs" / "missing"
    code, err = vjgan(capsys, "generate", runs[0], missing, runs[1], "--count", "1", "--seconds", "0.5", "--size", "32x32")
    assert code == 1
    assert sum(str(missing) in line for line in err.splitlines()) == 1
    for run_dir in runs:
        assert len(list((run_dir / "clips").glob("loops-*/*.mp4"))) == 1

    code, err = vjgan(capsys, "render", "walk", *runs, "--seconds", "0.5", "--size", "32x32", "--out", tmp_path / "walk.mp4")
    assert code == 1 and "--out" in err and not (tmp_path / "walk.mp4").exists()
    code, err = vjgan(capsys, "render", "progress", *runs, "--size", "32x32")
    assert code == 0, err
    assert all((run_dir / "clips" / "progress.mp4").is_file() for run_dir in runs)
