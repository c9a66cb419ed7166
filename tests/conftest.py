"""Shared fixtures: tiny real media made at test time (never ../shared)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

# librosa's numba cache is shared by every process of the venv; xdist workers compiling into it at once
# can corrupt it (later calls segfault), so each worker keeps its own, set before librosa is imported.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.path.join(os.environ.get("TMPDIR", "/tmp"), "vjgan-test-numba-" + os.environ.get("PYTEST_XDIST_WORKER", "main")),
)

# Tests run on small tensors; two threads per worker keep CI's 2 cores busy without oversubscribing.
torch.set_num_threads(int(os.environ.get("VJGAN_TEST_THREADS", "1")))


def write_frame_store(folder: Path, frames: np.ndarray) -> Path:
    """A frame store of `frames` (N, H, W, 3) uint8 in the documented layout (docs/interfaces.md)."""
    folder.mkdir(parents=True)
    np.save(folder / "0001-clip.npy", frames)
    shard = {
        "file": "0001-clip.npy",
        "source": "clip.mp4",
        "fingerprint": "sha256:test",
        "frames": len(frames),
        "source_fps": 30.0,
        "source_size_wh": [frames.shape[2], frames.shape[1]],
        "truncated": False,
    }
    manifest = {
        "format": "vjgan-frame-store",
        "version": 1,
        "genre": folder.name,
        "size_px": list(frames.shape[1:3]),
        "fps": 30.0,
        "crop": "center",
        "shards": [shard],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run trained by the real trainer, once per session, on moving gradients: a 32x32 seed96 model of
    width 8, 3,200 images (long enough for samples to show colour and shape, ~4 s), 9 snapshots, one
    checkpoint. Shared by the render, generate and demo tests: treat it as read-only (copy it to change it)."""
    from media import gradient_frames

    from vjgan.model.networks import ModelConfig
    from vjgan.train.config import TrainConfig
    from vjgan.train.loop import train

    root = tmp_path_factory.mktemp("tiny_run")
    store = write_frame_store(root / "data" / "gradients", gradient_frames(48, 32, 32))
    config = TrainConfig(
        model=ModelConfig(size_px=(32, 32), width=8, z_dim=16),
        store=str(store),
        batch_size=16,
        lr=1e-3,
        ema_half_life_images=100,
        images_total=3200,
        snapshot_every_images=400,
        checkpoint_every_images=3200,
        log_every_steps=50,
        noise_bank_size=16,
        precision="fp32",
        device="cpu",
    )
    train(config, root / "run")
    return root / "run"
