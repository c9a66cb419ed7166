"""Data-parallel training under torchrun, and the same code as a no-op in a single process.

Every batch is split into the run's batch shards (see `train.state`: one per rank when the run was
made); each rank computes the gradients of the shards it holds, summed, and one all-reduce per network
per step turns them into the mean over all shards, so every rank applies the same Adam update and the
weights stay identical. This is DDP's maths without its module wrapper: a GAN step runs D several
times per backward and freezes D's weights during G's step, which DDP's hooks do not allow. BatchNorm
stays per shard (as in the reference DCGAN, each rank normalises over its own share of the batch);
its running statistics, used only by the EMA generator at snapshot time, are averaged over shards
before snapshots and checkpoints so that every rank holds the same model.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; gloo carries the traffic on CPU, nccl on CUDA.
"""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from vjgan.device import pick_device
from vjgan.errors import RunError, VjganError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int  # this process's rank, 0 .. size - 1
    size: int  # processes training together
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes snapshots, checkpoints, logs and the progress bar."""
        return self.rank == 0


def start_world(device_name: str) -> World:
    """One rank of a torchrun job when its environment says so, else a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank, size, device)


def stop_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wait_for_every_rank(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def average_gradients(parameters: Iterable[torch.nn.Parameter], world: World, held_shards: int) -> None:
    """Replace the gradients, each rank's sum over the `held_shards` shards it holds (as many on every
    rank), by the mean over all shards, in one all-reduce. Two shards sum as a + b whether one rank
    holds both or two ranks one each, so the mean is bit for bit the same either way."""
    if world.size * held_shards == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (total parameters,)
    shard_sum_to_mean(flat, world.size * held_shards, world)
    for grad, averaged in zip(grads, flat.split([g.numel() for g in grads])):
        grad.copy_(averaged.view_as(grad))


def average_buffers(per_shard: list[list[torch.Tensor]], world: World) -> None:
    """Mean over all shards of each floating-point buffer (BatchNorm running statistics), given the buffers
    of the shards this rank holds, position by position; written into the first shard's, in place."""
    for same_buffer in zip(*per_shard):
        total = same_buffer[0]
        if total.is_floating_point():
            for other in same_buffer[1:]:
                total += other
            shard_sum_to_mean(total, world.size * len(per_shard), world)


def shard_sum_to_mean(local_sum: torch.Tensor, shard_count: int, world: World) -> None:
    """This rank's sum over its shards becomes, in place, the mean over all `shard_count` shards."""
    if world.size > 1:
        dist.all_reduce(local_sum)
    local_sum /= shard_count


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Make every rank's weights and buffers rank 0's."""
    if world.size == 1:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def mean_over_ranks(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.size == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total / world.size


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when `flag` is true on at least one (a collective: all ranks must call it)."""
    if world.size == 1:
        return flag
    value = torch.tensor([int(flag)], device=world.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_tensors(tensor: torch.Tensor, world: World) -> list[torch.Tensor]:
    """Every rank's copy of a same-shaped tensor (e.g. a random generator's state), indexed by rank."""
    if world.size == 1:
        return [tensor]
    local = tensor.to(world.device)
    gathered = [torch.empty_like(local) for _ in range(world.size)]
    dist.all_gather(gathered, local)
    return [t.to(tensor.device) for t in gathered]


def on_main_rank(world: World, action: Callable[[], T]) -> T | None:
    """Run `action` on rank 0 only; when it fails, every rank raises, so no rank waits forever."""
    result, error = None, None
    if world.is_main:
        try:
            result = action()
        except VjganError as caught:
            error = caught
    if any_rank(error is not None, world):
        raise error or RunError("rank 0 could not prepare the run; see its message")
    return result
