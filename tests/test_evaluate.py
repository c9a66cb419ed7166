"""Quality metrics: SWD over Laplacian-pyramid patches and diversity, pure maths on tiny frame sets."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from media import gradient_frames
from PIL import Image

from vjgan.evaluate import (
    EvalConfig,
    SwdReference,
    _upsample,
    diversity,
    laplacian_pyramid,
    pyramid_levels_px,
    sliced_wasserstein,
)

FAST = EvalConfig(patches_per_image=32, projections=32, repeats=2)


def _frames(seed=0, n=24, size=32) -> np.ndarray:
    return gradient_frames(n, size, size, seed=seed)


def _noisy(frames: np.ndarray, sigma: float, seed=1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


def test_laplacian_pyramid_levels_add_back_to_the_image():
    images = torch.rand(2, 3, 32, 48)
    levels = laplacian_pyramid(images, 3)
    assert [tuple(level.shape[2:]) for level in levels] == [(32, 48), (16, 24), (8, 12)]
    rebuilt = levels[-1]
    for detail in reversed(levels[:-1]):
        rebuilt = detail + _upsample(rebuilt, detail.shape[2:])
    torch.testing.assert_close(rebuilt, images)


def test_pyramid_stops_at_sixteen_pixels():
    assert pyramid_levels_px((96, 96)) == [96, 48, 24]
    assert pyramid_levels_px((32, 32)) == [32, 16]
    assert pyramid_levels_px((144, 256)) == [144, 72, 36, 18]


def test_identical_sets_score_far_below_different_ones():
    real = _frames()
    same = sliced_wasserstein(real, real.copy(), FAST).mean_x1e3
    other = sliced_wasserstein(real, _frames(seed=7), FAST).mean_x1e3
    noise = sliced_wasserstein(real, np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8), FAST).mean_x1e3
    assert same * 2 < other < noise


def test_swd_grows_with_the_strength_of_a_perturbation():
    real = _frames()
    reference = SwdReference(real, FAST)
    distances = [reference.distance(_noisy(real, sigma)).mean_x1e3 for sigma in (0, 8, 24, 64)]
    assert distances == sorted(distances) and distances[-1] > 3 * distances[0]


def test_a_colour_cast_raises_the_coarse_level_distance():
    real = _frames()
    reference = SwdReference(real, FAST)
    cast = np.clip(real.astype(int) + [40, 0, -40], 0, 255).astype(np.uint8)
    clean, shifted = reference.distance(real), reference.distance(cast)
    assert shifted.per_level_x1e3[-1] > 3 * clean.per_level_x1e3[-1]  # the low-pass level sees colour
    assert shifted.mean_x1e3 > clean.mean_x1e3


def test_swd_is_reproducible_and_compares_sets_of_different_sizes():
    real, fake = _frames(n=40), _frames(seed=3, n=10)
    first = sliced_wasserstein(real, fake, FAST)
    assert first == sliced_wasserstein(real, fake, FAST)
    assert len(first.per_level_x1e3) == 2 and np.isfinite(first.mean_x1e3)
    with pytest.raises(ValueError, match="generated frames"):
        SwdReference(real, FAST).distance(_frames(size=48))


def test_diversity_is_zero_for_a_collapsed_set_and_grows_with_variety():
    frames = _frames(n=16)
    collapsed = np.repeat(frames[:1], 16, axis=0)
    assert diversity(collapsed) < 1e-6
    few_modes = np.concatenate([np.repeat(frames[:1], 8, axis=0), np.repeat(frames[8:9], 8, axis=0)])
    assert 0 < diversity(few_modes) < diversity(frames)
    with pytest.raises(ValueError):
        diversity(frames[:1])


def test_diversity_is_on_the_per_pixel_scale():
    black, white = np.zeros((1, 64, 64, 3), np.uint8), np.full((1, 64, 64, 3), 255, np.uint8)
    assert diversity(np.concatenate([black, white])) == pytest.approx(1.0)


def make_run(tmp_path, name: str, snapshot_frames) -> Path:
    """A frame store ingested from a real video (once per test folder) and a run `name` on it whose snapshots,
    one every 1000 images, are `snapshot_frames(real)`: (16, 32, 32, 3) uint8 frame sets made from 16 store frames."""
    from media import write_video

    from vjgan.footage.ingest import IngestConfig, ingest
    from vjgan.footage.store import FrameStore
    from vjgan.model.networks import ModelConfig
    from vjgan.run.directory import write_config_toml
    from vjgan.run.snapshots import SnapshotStore
    from vjgan.train.config import TrainConfig

    if not (tmp_path / "data" / "waves").exists():
        (tmp_path / "footage" / "waves").mkdir(parents=True)
        write_video(tmp_path / "footage" / "waves" / "a.mp4", gradient_frames(40, 64, 48, seed=2))
        ingest(tmp_path / "footage", tmp_path / "data", IngestConfig(size_px=32, fps=None))
    store = FrameStore.open(tmp_path / "data" / "waves")
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    write_config_toml(TrainConfig(model=ModelConfig(size_px=(32, 32)), store=str(store.path)), run_dir / "config.toml")
    snapshots = SnapshotStore.open_for_writing(run_dir, bank_size=16, size_px=(32, 32))
    for number, frames in enumerate(snapshot_frames(store.sample(16, np.random.default_rng(5))), start=1):
        snapshots.append(1000 * number, frames)
    return run_dir


@pytest.fixture
def run_with_snapshots(tmp_path):
    """Snapshots: noise, the store's own frames (a perfect generator), and one frame repeated (a collapsed generator)."""
    return make_run(
        tmp_path,
        "waves",
        lambda real: [
            np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8),
            real,
            np.repeat(real[:1], 16, axis=0),
        ],
    )


def _blended(real: np.ndarray, noise_shares: list[float]) -> list[np.ndarray]:
    """`real` frames mixed with fresh noise, one set per share: a generator that is as far from the store."""
    sets = []
    for seed, share in enumerate(noise_shares):
        noise = np.random.default_rng(seed).integers(0, 256, real.shape)
        sets.append(np.round(real * (1 - share) + noise * share).astype(np.uint8))
    return sets


def falling_run(tmp_path) -> Path:
    return make_run(tmp_path, "improving", lambda real: _blended(real, [0.9, 0.7, 0.5, 0.35, 0.25, 0.15]))


def plateaued_run(tmp_path) -> Path:
    return make_run(tmp_path, "flat", lambda real: _blended(real, [0.9, 0.5] + [0.2] * 6))


FAST_RUN = EvalConfig(store_frames=32, patches_per_image=32, projections=32, repeats=2)


def test_evaluate_run_scores_every_snapshot_against_the_runs_store(run_with_snapshots):
    from vjgan.evaluate import evaluate_run

    report = evaluate_run(run_with_snapshots, FAST_RUN)
    noise, perfect, collapsed = report.snapshots
    assert [row.images_seen for row in report.snapshots] == [1000, 2000, 3000]
    assert perfect.swd_x1e3 * 3 < noise.swd_x1e3
    assert collapsed.diversity < 1e-6 < perfect.diversity and perfect.diversity == pytest.approx(report.store_diversity, rel=0.5)
    saved = json.loads(report.json_path.read_text())
    assert [row["swd_x1e3"] for row in saved["snapshots"]] == [row.swd_x1e3 for row in report.snapshots]
    assert Image.open(report.swd_png).format == "PNG" and Image.open(report.diversity_png).format == "PNG"


def test_evaluate_run_takes_every_nth_snapshot_and_always_the_newest(run_with_snapshots):
    from vjgan.evaluate import evaluate_run

    report = evaluate_run(
        run_with_snapshots, EvalConfig(every_nth_snapshot=2, store_frames=16, patches_per_image=16, projections=16, repeats=1)
    )
    assert [row.index for row in report.snapshots] == [0, 2]


def test_eval_command_prints_a_table_and_names_the_charts(run_with_snapshots, capsys):
    from vjgan.cli import main

    assert main(["eval", str(run_with_snapshots), "--every", "2", "--samples", "16"]) == 0
    printed = capsys.readouterr().err
    assert "SWD" in printed and "3,000" in printed and "swd.png" in printed and "diversity.png" in printed


def test_eval_command_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from vjgan.cli import main

    assert main(["eval", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert str(tmp_path) in error and "not a vjgan run" in error and "Traceback" not in error


def test_evaluate_run_tells_a_falling_curve_from_a_plateau_and_records_it(tmp_path):
    from vjgan.evaluate import evaluate_run

    falling, flat = evaluate_run(falling_run(tmp_path), FAST_RUN), evaluate_run(plateaued_run(tmp_path), FAST_RUN)
    assert falling.plateau.verdict == "falling" and falling.plateau_line.startswith("SWD still falling")
    assert flat.plateau.verdict == "plateaued" and flat.plateau.since_images_seen == 3000
    assert (
        flat.plateau_line.startswith("SWD has plateaued since ~3,000 images") and "--preset modern" in flat.plateau_line
    )  # a seed96 run
    saved = json.loads(flat.json_path.read_text())["plateau"]
    assert saved["verdict"] == "plateaued" and saved["since_images_seen"] == 3000 and saved["line"] == flat.plateau_line
    assert (saved["finest_level_px"], saved["finest_verdict"]) == (32, "plateaued")  # sharpness judged on its own too


def test_eval_command_prints_the_plateau_verdict(tmp_path, capsys):
    from vjgan.cli import main

    assert main(["eval", str(plateaued_run(tmp_path)), "--samples", "16"]) == 0
    assert "SWD has plateaued since ~3,000 images" in capsys.readouterr().err


def test_eval_command_sums_up_several_runs_a_row_each_and_reports_a_bad_one(tmp_path, capsys):
    from vjgan.cli import main

    runs = [falling_run(tmp_path), plateaued_run(tmp_path)]
    (tmp_path / "runs" / "notes.txt").write_text("not a run")
    assert main(["eval", *map(str, sorted((tmp_path / "runs").iterdir())), "--samples", "16"]) == 1
    printed = capsys.readouterr().err
    assert "notes.txt" in printed and "not a vjgan run" in printed
    rows = [line for line in printed.splitlines() if line.startswith("│ flat") or line.startswith("│ improving")]
    assert len(rows) == 2 and "plateaued" in rows[0] and "falling:" in rows[1]  # each row's first line, in the order given
    assert [json.loads((run / "eval.json").read_text())["plateau"]["verdict"] for run in runs] == ["falling", "plateaued"]


def test_eval_command_refuses_data_with_several_runs(tmp_path, capsys):
    from vjgan.cli import main

    assert main(["eval", str(tmp_path / "a"), str(tmp_path / "b"), "--data", str(tmp_path)]) == 1
    assert "--data" in capsys.readouterr().err
