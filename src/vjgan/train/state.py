"""What a run carries from step to step (networks, optimizers, random streams, counters, noise bank)
and how all of it goes into a checkpoint and comes back out.

Everything random is drawn from seeds derived from the run's one seed: the initial weights and the
noise bank identically on every rank and device, and per rank one torch.Generator per kind of
choice. Their states are saved with the weights, so a resumed run continues the same sequences.
"""

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjgan.console import console
from vjgan.errors import RunError
from vjgan.model.networks import Discriminator, Generator
from vjgan.train import checkpoint as ckpt
from vjgan.train.config import TrainConfig, config_to_dict
from vjgan.train.distributed import World, any_rank, average_buffers, broadcast_module, gather_tensors
from vjgan.train.rundir import RunDir

STREAMS = ("batch", "latent", "augment")  # one random generator per kind of choice, per rank
NOISE_BANK_STREAM = len(STREAMS)  # the bank is drawn once, the same on every rank and device
WEIGHTS_STREAM = len(STREAMS) + 1  # initial weights, the same on every rank and device


@dataclass
class Networks:
    G: Generator
    G_ema: Generator  # exponential moving average of G's weights: what snapshots and renders show
    D: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    G_forward: torch.nn.Module  # G, or G compiled (same weights)
    D_forward: torch.nn.Module


@dataclass
class Counters:
    images_seen: int = 0  # images D has seen as real, all ranks together
    step: int = 0  # optimisation steps
    seconds: float = 0.0  # wall-clock training time, all sessions together
    window_steps: int = 0  # steps summed in the open log window


def build_networks(config: TrainConfig, world: World) -> Networks:
    """G, D and EMA-G initialised from the seed on the CPU (the same weights on any device), then moved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(config.seed, WEIGHTS_STREAM))
        G = Generator(config.model).to(world.device, memory_format=torch.channels_last)
        D = Discriminator(config.model).to(world.device, memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    for module in (G, D):
        broadcast_module(module, world)
    on_cuda = world.device.type == "cuda"  # fused Adam; capturable where a CUDA graph records its step
    adam = dict(lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, fused=on_cuda,
                capturable=on_cuda and config.cuda_graph)
    opt_g = torch.optim.Adam(G.parameters(), **adam)
    opt_d = torch.optim.Adam(D.parameters(), **adam)
    G_forward, D_forward = (torch.compile(G), torch.compile(D)) if config.compile else (G, D)
    return Networks(G, G_ema, D, opt_g, opt_d, G_forward, D_forward)


def stream_seed(seed: int, stream: int, rank: int = 0) -> int:
    """Independent 63-bit seeds for each (run seed, stream, rank), via numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, stream, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def make_streams(seed: int, world: World) -> dict[str, torch.Generator]:
    streams = {}
    for index, name in enumerate(STREAMS):
        generator = torch.Generator(world.device)
        generator.manual_seed(stream_seed(seed, index, world.rank))
        streams[name] = generator
    return streams


def draw_noise_bank(config: TrainConfig) -> torch.Tensor:
    """The run's fixed noise: (bank, z_dim) standard-normal vectors, drawn once from its seed on the CPU.

    Kept in Gaussian space, where renderers build latent paths; snapshots convert with
    `latent_from_gaussian` to the model's latent distribution.
    """
    generator = torch.Generator().manual_seed(stream_seed(config.seed, NOISE_BANK_STREAM))
    return torch.randn(config.noise_bank_size, config.model.z_dim, generator=generator)


def share_batchnorm_statistics(nets: Networks, world: World) -> None:
    """Average G's per-rank BatchNorm statistics and hand them to EMA-G, so every rank holds one model."""
    if world.size > 1:
        average_buffers(nets.G, world)
        with torch.no_grad():
            for ema_buffer, buffer in zip(nets.G_ema.buffers(), nets.G.buffers()):
                ema_buffer.copy_(buffer)


def diverged_error(run: RunDir, images_seen: int, what: str) -> RunError:
    last_good = ckpt.latest_checkpoint(run.path)
    return RunError(
        f"{run.path}: training diverged before {images_seen:,} images ({what}); the last good checkpoint "
        f"{last_good} is intact: re-run with --resume-from {last_good} and a lower --lr or another --seed"
    )


def save_checkpoint(run, config, nets: Networks, streams, noise_bank, counters: Counters, loss_sums, world: World) -> None:
    """Write a checkpoint (rank 0), unless the weights or the open window hold NaN/inf (then stop)."""
    share_batchnorm_statistics(nets, world)
    weights = [*nets.G.parameters(), *nets.D.parameters()]
    finite = bool(torch.stack([torch.isfinite(w).all() for w in weights] + [torch.isfinite(loss_sums).all()]).all())
    if any_rank(not finite, world):
        raise diverged_error(run, counters.images_seen, "weights or losses became NaN/inf")
    if world.size > 1:  # data-parallel training is only right while every rank holds the same weights
        checksums = gather_tensors(torch.stack([w.detach().double().sum() for w in weights]), world)
        if any(not torch.equal(checksum, checksums[0]) for checksum in checksums):
            raise RuntimeError(f"{run.path}: weights differ between ranks at {counters.images_seen} images")
    tensors = {
        **ckpt.module_tensors("G", nets.G),
        **ckpt.module_tensors("G_ema", nets.G_ema),
        **ckpt.module_tensors("D", nets.D),
        **ckpt.optimizer_tensors("opt_g", nets.opt_g),
        **ckpt.optimizer_tensors("opt_d", nets.opt_d),
        "noise_bank": noise_bank,
    }
    per_rank = {f"rng.{name}": generator.get_state() for name, generator in streams.items()}
    per_rank["loss_sums"] = loss_sums
    for name, tensor in per_rank.items():
        for rank, rank_tensor in enumerate(gather_tensors(tensor, world)):
            tensors[f"{name}.rank{rank}"] = rank_tensor
    metadata = {
        "config": config_to_dict(config),
        "counters": vars(counters),
        "world_size": world.size,
        "optimizers": {
            "G": ckpt.optimizer_hyperparameters(nets.opt_g),
            "D": ckpt.optimizer_hyperparameters(nets.opt_d),
        },
    }
    if world.is_main:
        ckpt.write_checkpoint(run.path, tensors, metadata)


def restore_checkpoint(path: Path, config: TrainConfig, nets: Networks, streams, world: World):
    """Load a checkpoint into the networks and streams; returns (counters, loss_sums, noise_bank).

    Resuming on another number of ranks, or on another kind of device (CPU and CUDA random states differ
    in kind and size), is allowed: streams the checkpoint has no usable state for are seeded afresh from
    the run's seed, their rank and the images seen.
    """
    tensors, metadata = ckpt.read_checkpoint(path, world.device)
    for prefix in ("G", "G_ema", "D"):
        ckpt.load_module(getattr(nets, prefix), tensors, prefix, path)
    ckpt.load_optimizer(nets.opt_g, tensors, "opt_g")
    ckpt.load_optimizer(nets.opt_d, tensors, "opt_d")
    counters = Counters(**metadata["counters"])
    for index, (name, generator) in enumerate(streams.items()):
        state = tensors.get(f"rng.{name}.rank{world.rank}")
        if state is not None and state.numel() == generator.get_state().numel():
            generator.set_state(state.cpu())
        else:
            if state is not None and index == 0 and world.is_main:
                console.print(f"{path.name}: random streams saved on another kind of device; they restart from the seed")
            generator.manual_seed(stream_seed(config.seed, index, world.rank) ^ counters.images_seen)
    loss_sums = tensors.get(f"loss_sums.rank{world.rank}", torch.zeros(2, device=world.device))
    return counters, loss_sums, tensors["noise_bank"]
