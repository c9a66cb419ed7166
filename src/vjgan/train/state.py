"""What a run carries from step to step (networks, optimizers, random streams, counters, noise bank)
and how all of it goes into a checkpoint and comes back out.

Everything random is drawn from seeds derived from the run's one seed: the initial weights and the
noise bank identically on every rank and device, and per batch shard one torch.Generator per kind of
choice. Their states are saved with the weights, so a resumed run continues the same sequences.

Batch shards: a run splits every batch into a fixed number of shards, chosen when it is made (its number
of ranks then) and kept for its life. Each shard has its own random streams and its own BatchNorm
statistics, and is computed on its own (forward, loss and backward), so a process may hold one shard or
several: rank r holds shards r, r + ranks, ... and the step averages gradients over all shards. A run
made on 2 ranks therefore continues identically on 2 ranks or on 1; only a number of ranks that cannot
hold whole, equal shares of its shards (1 shard on 2 ranks, 2 on 4, 3 on 2) splits the batch afresh.
"""

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vjgan.console import console
from vjgan.device import autocast, autocast_dtype
from vjgan.errors import RunError
from vjgan.model.networks import Discriminator, Generator, sample_latents
from vjgan.run import checkpoint as ckpt
from vjgan.run.checkpoint import Counters
from vjgan.run.directory import RunDir
from vjgan.train.config import TrainConfig, config_to_dict
from vjgan.train.distributed import World, any_rank, average_buffers, broadcast_module, gather_tensors

STREAMS = ("batch", "latent", "augment")  # one random generator per kind of choice, per batch shard
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
    # Where this process holds several batch shards: each one's own buffers (G's, then D's: BatchNorm
    # statistics, spectral-norm vectors), which G and D use while that shard runs. Empty for one shard.
    shard_buffers: list[list[torch.Tensor]] = field(default_factory=list)


@dataclass
class TrainingState:
    """Everything a run carries from step to step, and all that a checkpoint saves and restores."""

    nets: Networks
    streams: list[dict[str, torch.Generator]]  # per batch shard this rank holds, one generator per STREAMS name
    noise_bank: torch.Tensor  # (bank, z_dim) Gaussian: the fixed noise every snapshot renders
    counters: Counters
    loss_sums: torch.Tensor  # (2,) this rank's (D, G) loss sums of the open log window


def new_state(config: TrainConfig, world: World, batch_device: torch.device | None = None) -> TrainingState:
    """A new run's state on `world.device`: networks and streams from the seed, the bank drawn, nothing counted.

    `batch_device`: where the batch streams draw (default `world.device`; the CPU where frames are streamed
    from disk, see train.data). `restore_checkpoint` keeps them there."""
    return TrainingState(
        nets=build_networks(config, world),
        streams=[fresh_streams(config.seed, world.rank, world.device, batch_device=batch_device)],
        noise_bank=draw_noise_bank(config).to(world.device),
        counters=Counters(),
        loss_sums=torch.zeros(2, device=world.device),
    )


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
    adam = dict(
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        fused=on_cuda,
        capturable=on_cuda and config.cuda_graph,
    )
    opt_g = torch.optim.Adam(G.parameters(), **adam)
    opt_d = torch.optim.Adam(D.parameters(), **adam)
    G_forward, D_forward = (torch.compile(G), torch.compile(D)) if config.compile else (G, D)
    return Networks(G, G_ema, D, opt_g, opt_d, G_forward, D_forward)


def stream_seed(seed: int, stream: int, shard: int = 0) -> int:
    """Independent 63-bit seeds for each (run seed, stream, batch shard), via numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, stream, shard]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def fresh_streams(
    seed: int, shard: int, device: torch.device, images_seen: int = 0, batch_device: torch.device | None = None
) -> dict[str, torch.Generator]:
    """A shard's streams on `device` (the batch stream on `batch_device`, when given) seeded from the run's
    seed, the shard and the images seen (0 in a new run). A new run has one shard per rank, its own;
    `restore_checkpoint` lays out those of the checkpoint's shards."""
    streams = {}
    for index, name in enumerate(STREAMS):
        streams[name] = torch.Generator(batch_device or device if name == "batch" else device)
        streams[name].manual_seed(stream_seed(seed, index, shard) ^ images_seen)
    return streams


def batch_shard_count(saved_count: int, batch_size: int, world: World) -> int:
    """The shards a resumed run splits its batches into: those it was made with where every rank can
    hold an equal number of whole ones, else one per rank (the batch is then split afresh)."""
    if saved_count % world.size == 0 and batch_size % saved_count == 0:
        return saved_count
    return world.size


def held_shards(shard_count: int, rank: int, ranks: int) -> list[int]:
    """The batch shards `rank` holds: rank, rank + ranks, rank + 2 ranks, ..."""
    return list(range(rank, shard_count, ranks))


def use_shard_buffers(nets: Networks, position: int) -> None:
    """Point G's and D's buffers at those of this process's `position`-th shard, which its forward passes
    then update in place as that shard's own rank would (nothing to do where the process holds one).

    The tensors are swapped, not copied into: autograd keeps a shard's BatchNorm statistics for its
    backward pass, which comes after the other shards' forward passes (G's step reuses D's step's frames)."""
    if nets.shard_buffers:
        for (module, name), own in zip(buffer_slots(nets), nets.shard_buffers[position]):
            setattr(module, name, own)


def buffer_slots(nets: Networks) -> list[tuple[torch.nn.Module, str]]:
    """(module, buffer name) of every buffer of G, then of D, in the order of `.buffers()`."""
    return [
        (module, name)
        for network in (nets.G, nets.D)
        for module in network.modules()
        for name, _ in module.named_buffers(recurse=False)
    ]


def copy_tensors(targets, sources) -> None:
    for target, source in zip(targets, sources):
        target.copy_(source)


def draw_noise_bank(config: TrainConfig) -> torch.Tensor:
    """The run's fixed noise: (bank, z_dim) standard-normal vectors, drawn once from its seed on the CPU.

    Kept in Gaussian space, where renderers build latent paths; snapshots convert with
    `latent_from_gaussian` to the model's latent distribution.
    """
    generator = torch.Generator().manual_seed(stream_seed(config.seed, NOISE_BANK_STREAM))
    return torch.randn(config.noise_bank_size, config.model.z_dim, generator=generator)


@torch.no_grad()
def share_batchnorm_statistics(nets: Networks, world: World) -> None:
    """Average G's BatchNorm statistics over all batch shards and hand them to EMA-G and to every shard, so
    every rank holds one model. G and D then hold this process's first shard's buffers (what rank 0 saves)."""
    if world.size == 1 and not nets.shard_buffers:
        return
    g_count = len(list(nets.G.buffers()))
    per_shard = [own[:g_count] for own in nets.shard_buffers] or [list(nets.G.buffers())]
    average_buffers(per_shard, world)  # into the first shard's
    for own in per_shard[1:]:
        copy_tensors(own, per_shard[0])
    use_shard_buffers(nets, 0)
    copy_tensors(nets.G_ema.buffers(), nets.G.buffers())


@torch.no_grad()
def settle_batchnorm_statistics(state: TrainingState, config: TrainConfig, world: World) -> None:
    """Give EMA-G the BatchNorm statistics its snapshot or checkpoint is taken with.

    G's own statistics describe G's activations over its last few batches, not those of the EMA's averaged
    weights, and GAN training moves G's weights around their average by more than the statistics can stand:
    EMA-G's frames then swing in brightness and detail from one snapshot to the next (bench/RESULTS.md,
    "EMA-G's BatchNorm statistics"). With `ema_batchnorm_latents` they are measured on EMA-G itself, as SWA's
    update_bn does: that many fixed latents, in batches of a training shard's size and at the training
    precision, so each layer is normalised as in training. Nothing random that training draws is touched,
    so a resumed run stays the uninterrupted one; every rank measures the same latents.
    """
    nets = state.nets
    share_batchnorm_statistics(nets, world)
    if config.ema_batchnorm_latents == 0:
        return
    layers = [module for module in nets.G_ema.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a plain average over the batches below
    shard_batch = max(1, config.batch_size // world.size // len(state.streams))
    generator = torch.Generator().manual_seed(config.seed)
    latents = sample_latents(config.ema_batchnorm_latents, config.model.z_dim, config.model.latent, generator, world.device)
    nets.G_ema.train()
    try:
        with autocast(world.device, autocast_dtype(config.precision, world.device)):
            for batch in latents.split(shard_batch):
                nets.G_ema(batch)
    finally:
        nets.G_ema.eval()
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def diverged_error(run: RunDir, images_seen: int, what: str) -> RunError:
    last_good = ckpt.latest_checkpoint(run.path)
    return RunError(
        f"{run.path}: training diverged before {images_seen:,} images ({what}); the last good checkpoint "
        f"{last_good} is intact: re-run with --resume-from {last_good} and a lower --lr or another --seed"
    )


def save_checkpoint(run: RunDir, config: TrainConfig, state: TrainingState, world: World) -> None:
    """Write a checkpoint (rank 0), unless the weights or the open window hold NaN/inf (then stop). The caller
    settles the BatchNorm statistics first (`settle_batchnorm_statistics`), once for a snapshot of the same step too."""
    nets, counters = state.nets, state.counters
    weights = [*nets.G.parameters(), *nets.D.parameters()]
    finite = bool(torch.stack([torch.isfinite(w).all() for w in weights] + [torch.isfinite(state.loss_sums).all()]).all())
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
        "noise_bank": state.noise_bank,
    }
    streams = state.streams
    for name in STREAMS:  # rng.<stream>.rank<s>: shard s (named for the rank that held it in the first session)
        held_states = torch.stack([shard[name].get_state() for shard in streams])  # (held shards, state bytes)
        for rank, states in enumerate(gather_tensors(held_states, world)):
            for shard, shard_state in zip(held_shards(len(streams) * world.size, rank, world.size), states):
                tensors[f"rng.{name}.rank{shard}"] = shard_state
    for rank, rank_sums in enumerate(gather_tensors(state.loss_sums, world)):  # loss_sums.rank<r>: rank r's window
        tensors[f"loss_sums.rank{rank}"] = rank_sums
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


def restore_checkpoint(path: Path, config: TrainConfig, state: TrainingState, world: World) -> None:
    """Load a checkpoint into `state`: networks, counters, loss sums, noise bank, and streams laid out afresh
    for the batch shards this rank holds now.

    Resuming on another number of ranks, or on another kind of device (CPU and CUDA random states differ
    in kind and size), is allowed. The run keeps its shards where every rank can hold an equal number of
    them, and continues exactly; otherwise (see `batch_shard_count`) its batches are split one shard per
    rank from here. Streams the checkpoint has no usable state for are seeded afresh from the run's seed,
    their shard and the images seen.
    """
    tensors, metadata = ckpt.read_checkpoint(path, world.device)
    nets = state.nets
    for prefix in ("G", "G_ema", "D"):
        ckpt.load_module(getattr(nets, prefix), tensors, prefix, path)
    ckpt.load_optimizer(nets.opt_g, tensors, "opt_g")
    ckpt.load_optimizer(nets.opt_d, tensors, "opt_d")
    counters = Counters(**metadata["counters"])
    saved_shards = saved_rows(tensors, f"rng.{STREAMS[0]}")
    shard_count = batch_shard_count(saved_shards, config.batch_size, world)
    shards = held_shards(shard_count, world.rank, world.size)
    batch_device = state.streams[0]["batch"].device
    state.streams = streams = [
        fresh_streams(config.seed, shard, world.device, counters.images_seen, batch_device) for shard in shards
    ]
    if shard_count != saved_shards:
        if world.is_main:
            made_on = f"{saved_shards} rank" + "s" * (saved_shards > 1)
            split = f"split {shard_count} ways" if shard_count > 1 else "one shard"
            console.print(
                f"{path.name}: a run made on {made_on} continues on {world.size}: each batch is {split} "
                "from here, with fresh random streams",
                soft_wrap=True,
            )
    elif not load_stream_states(dict(zip(shards, streams)), tensors) and world.is_main:
        console.print(f"{path.name}: random streams saved on another kind of device; they restart from the seed")
    loaded = [*nets.G.buffers(), *nets.D.buffers()]  # every shard starts from the checkpoint's, as every rank would
    copies = [[buffer.clone() for buffer in loaded] for _ in streams[1:]]
    nets.shard_buffers = [loaded, *copies] if copies else []
    loss_rows = [tensors[f"loss_sums.rank{rank}"] for rank in range(saved_rows(tensors, "loss_sums"))]
    # each rank's row is the mean over its shards: another number of ranks carries on from their mean
    state.loss_sums = loss_rows[world.rank] if len(loss_rows) == world.size else torch.stack(loss_rows).mean(0)
    state.counters, state.noise_bank = counters, tensors["noise_bank"]


def saved_rows(tensors: dict[str, torch.Tensor], name: str) -> int:
    """How many `<name>.rank<i>` tensors a checkpoint holds (one per batch shard, or per rank)."""
    return sum(key.startswith(f"{name}.rank") for key in tensors)


def load_stream_states(streams: dict[int, dict[str, torch.Generator]], tensors) -> bool:
    """Set each shard's streams to their saved states; False where those are of another kind of device
    (another size), which leaves them as seeded."""
    usable = True
    for shard, shard_streams in streams.items():
        for name, generator in shard_streams.items():
            state = tensors[f"rng.{name}.rank{shard}"]
            if state.numel() == generator.get_state().numel():
                generator.set_state(state.cpu())
            else:
                usable = False
    return usable
