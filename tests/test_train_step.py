"""The training step's own parts: EMA with a device-scalar decay, `--cuda-graph` as a session setting, and
resuming where the random streams were saved on another kind of device.

The graph itself needs a GPU: `bench/train.py --verify-graph` checks it there (bench/RESULTS.md).
"""

import copy
import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from test_train import TOTAL_IMAGES, assert_same_run, cli_args, reference, store, tiny_config  # noqa: F401 (fixtures)

from vjgan.cli import main
from vjgan.errors import RunError
from vjgan.model.networks import Generator, ModelConfig, sample_latents
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


def test_measuring_ema_gs_batchnorm_statistics_leaves_training_untouched(store, reference, tmp_path):
    """With `ema_batchnorm_latents` a run trains exactly as without it (weights, optimizer and random states):
    only EMA-G's BatchNorm statistics differ, and they are those of EMA-G's own activations, where G's were copied."""
    config = tiny_config(store, ema_batchnorm_latents=24)  # three batches of 8
    train(config, tmp_path / "measured")
    measured, plain = load_file(ckpt.latest_checkpoint(tmp_path / "measured")), load_file(ckpt.latest_checkpoint(reference))
    differing = {name for name in measured if not torch.equal(measured[name], plain[name])}
    batchnorm_buffers = {"running_mean", "running_var", "num_batches_tracked"}
    assert differing and all(name.startswith("G_ema.") and name.rsplit(".", 1)[1] in batchnorm_buffers for name in differing)

    G_ema, _ = ckpt.load_generator(tmp_path / "measured")
    name, layer = next((n, m) for n, m in G_ema.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    inputs = []  # the first BatchNorm layer's input over the latents, measured as training normalises: 3 batches of 8
    layer.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().transpose(0, 1).flatten(1)))
    latents = sample_latents(24, config.model.z_dim, config.model.latent, torch.Generator().manual_seed(config.seed))
    expected_mean, expected_var = layer.running_mean.clone(), layer.running_var.clone()
    with torch.no_grad():
        copy.deepcopy(G_ema).train()(latents)  # (the copy's statistics move, not G_ema's)
    per_channel = inputs[0]  # (channels, 24 images x positions)
    torch.testing.assert_close(expected_mean, per_channel.mean(1))
    torch.testing.assert_close(expected_var, per_channel.reshape(len(per_channel), 3, -1).var(2).mean(1))
    assert not torch.allclose(measured[f"G.{name}.running_mean"], expected_mean, atol=1e-3)  # G's, what a plain run copies


def test_a_run_made_copying_gs_statistics_resumes_measuring_them(store, tmp_path):
    train(tiny_config(store, images_total=160), tmp_path / "run")
    assert train(tiny_config(store, images_total=320, ema_batchnorm_latents=16), tmp_path / "run").images_seen == 320


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
