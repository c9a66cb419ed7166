"""The training step's own parts: EMA with a device-scalar decay, `--cuda-graph` as a session setting, and
resuming where the random streams were saved on another kind of device.

The graph itself needs a GPU: `bench/train.py --verify-graph` checks it there (bench/RESULTS.md).
"""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from test_train import TOTAL_IMAGES, assert_same_run, cli_args, reference, store, tiny_config  # noqa: F401 (fixtures)

from vjgan.cli import main
from vjgan.errors import RunError
from vjgan.model.networks import Generator, ModelConfig
from vjgan.run import checkpoint as ckpt
from vjgan.train.distributed import World
from vjgan.train.loop import train
from vjgan.train.state import new_state
from vjgan.train.step import RealFrames, TrainStep, update_ema


def test_update_ema_mixes_weights_by_the_decay_tensor_and_copies_batchnorm_statistics():
    torch.manual_seed(0)
    config = ModelConfig(size_px=(32, 32), width=4, z_dim=8)
    G, G_ema = Generator(config), Generator(config)
    for module in (G, G_ema):
        for buffer in module.buffers():
            if buffer.is_floating_point():
                buffer.uniform_()
    before = [p.detach().clone() for p in G_ema.parameters()]
    update_ema(G_ema, G, torch.tensor(0.75))
    for old, new, target in zip(before, G_ema.parameters(), G.parameters()):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * target)
    assert all(torch.equal(a, b) for a, b in zip(G_ema.buffers(), G.buffers()))


@pytest.mark.parametrize("images_seen", [0, 100_000])
def test_a_step_moves_ema_g_by_the_decay_of_its_own_images_seen(store, images_seen):
    """The decay is a tensor each call refills (a recorded CUDA graph would otherwise keep the first one)."""
    config = tiny_config(store, augment="")
    world = World(rank=0, size=1, device=torch.device("cpu"))
    state = new_state(config, world)
    nets = state.nets
    frames = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    step = TrainStep(state, RealFrames(frames), config, world)
    ema_before = [p.detach().clone() for p in nets.G_ema.parameters()]
    losses = step(images_seen)
    assert losses.shape == (2,) and torch.isfinite(losses).all()
    decay = config.ema_beta(images_seen)
    for old, new, trained in zip(ema_before, nets.G_ema.parameters(), nets.G.parameters()):
        torch.testing.assert_close(new, decay * old + (1 - decay) * trained)


def test_cuda_graph_is_refused_under_torchrun(store):
    config = tiny_config(store, cuda_graph=True)
    world = World(rank=0, size=2, device=torch.device("cpu"))
    with pytest.raises(RunError, match="--cuda-graph"):
        TrainStep(
            new_state(dataclasses.replace(config, cuda_graph=False), World(0, 1, world.device)),
            RealFrames(torch.zeros(1, 32, 32, 3, dtype=torch.uint8)),
            config,
            world,
        )


def test_cuda_graph_is_a_session_setting_a_run_resumes_with(store, reference, tmp_path):
    """Half the run without it, the rest with `--cuda-graph` (on the CPU: the eager step): nothing changes."""
    run_dir = tmp_path / "graph"
    train(tiny_config(store, images_total=TOTAL_IMAGES // 2), run_dir)
    assert main([*cli_args(tiny_config(store), run_dir), "--cuda-graph"]) == 0
    assert_same_run(run_dir, reference)


def test_a_checkpoint_whose_random_streams_are_of_another_device_resumes_with_fresh_streams(store, tmp_path, capsys):
    """CUDA saves 16-byte philox states, the CPU 5056-byte Mersenne states; `device` may change on resume."""
    run_dir = tmp_path / "moved"
    half = train(tiny_config(store, images_total=TOTAL_IMAGES // 2), run_dir)
    tensors, metadata = ckpt.read_checkpoint(half.checkpoint)
    cuda_like = {
        name: torch.arange(16, dtype=torch.uint8) if name.startswith("rng.") else tensor for name, tensor in tensors.items()
    }
    half.checkpoint.unlink()
    moved = ckpt.write_checkpoint(run_dir, cuda_like, metadata)
    assert moved.name == half.checkpoint.name

    finished = train(tiny_config(store), run_dir)
    assert finished.finished and finished.images_seen == TOTAL_IMAGES
    assert "random streams saved on another kind of device" in capsys.readouterr().err
    weights = load_file(finished.checkpoint)
    assert all(torch.isfinite(weights[name]).all() for name in weights if name.startswith("G."))
