"""One optimisation step (sample, D step, G step, EMA), run eagerly or replayed as one CUDA graph.

A `seed96` step at batch 100 is ~250 small kernels. On a fast GPU, launching them one by one from
Python costs more time than running them (the GPU waits on the host), so `--cuda-graph` records the
whole step once, with both backward passes and both fused Adam updates, and replays it with a single
launch per step. Everything a step reads or writes stays at the same addresses from step to step (the
store, the weights, the optimizer state, the random streams' philox states, the EMA decay as a device
scalar), which is what lets the recorded graph stand for every later step.
"""

import dataclasses

import torch

from vjgan.console import console
from vjgan.device import autocast, autocast_dtype, pick_device
from vjgan.errors import RunError
from vjgan.model.augment import diff_augment
from vjgan.model.losses import PAIRED_LOSSES, d_loss, g_loss, gradient_penalty
from vjgan.model.networks import Generator, sample_latents
from vjgan.train.config import TrainConfig
from vjgan.train.data import RealFrames, StreamedFrames
from vjgan.train.distributed import World, average_gradients
from vjgan.train.state import TrainingState, new_state, use_shard_buffers

GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN autotuning, Adam's lazy state)


class TrainStep:
    """`step(images_seen)` runs one step of `state` and returns this rank's (D loss, G loss) as a (2,) device
    tensor, the mean over the batch shards it holds (`state.streams`, one dict per shard).

    With `config.cuda_graph` on CUDA, the first `GRAPH_WARMUP_STEPS` calls run eagerly on a side stream,
    the next one records the step into a CUDA graph, and every call from then on replays it. The
    returned tensor is then the graph's own output, overwritten by the next call: add it up before.
    """

    def __init__(self, state: TrainingState, real: RealFrames | StreamedFrames, config: TrainConfig, world: World):
        self.state, self.real, self.config, self.world = state, real, config, world
        self.amp_dtype = autocast_dtype(config.precision, world.device)
        self.ema_decay = torch.zeros((), device=world.device)  # EMA-G's decay of the coming step
        self.graphed = config.cuda_graph and world.device.type == "cuda"
        if config.cuda_graph and world.size > 1:
            raise RunError("--cuda-graph records one process's step; under torchrun leave it off")
        if self.graphed and config.gradient_penalty > 0 and config.gradient_penalty_every_steps > 1:
            # One recorded step stands for all: lazy penalties (every n-th step, n times as strong; modern2's)
            # become penalties on every step at 1x, the same strength on average.
            self.config = config = dataclasses.replace(config, gradient_penalty_every_steps=1)
            if world.is_main:
                console.print("--cuda-graph: gradient penalties on every step (one recorded step), same mean strength")
        if config.cuda_graph and not self.graphed and world.is_main:
            console.print(f"--cuda-graph: training on {world.device.type}, not CUDA; steps run one by one")
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_losses: torch.Tensor | None = None
        self.eager_steps = 0

    def __call__(self, images_seen: int) -> torch.Tensor:
        self.real.stage(self.state.streams)  # streamed frames: this step's batches into their device buffers
        self.ema_decay.fill_(self.config.ema_beta(images_seen))  # no host sync: a fill kernel, or a CPU scalar
        if not self.graphed:
            return self._eager_step()
        if self.graph is None and self.eager_steps < GRAPH_WARMUP_STEPS:
            return self._warmup_step()
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.graph_losses

    def _eager_step(self) -> torch.Tensor:
        regularise = self.state.counters.step % self.config.gradient_penalty_every_steps == 0
        return train_step(self.state, self.real, self.config, self.world, self.amp_dtype, self.ema_decay, regularise)

    def _warmup_step(self) -> torch.Tensor:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            losses = self._eager_step()
        torch.cuda.current_stream().wait_stream(side)
        losses.record_stream(torch.cuda.current_stream())  # read there next; its memory must not be reused first
        self.eager_steps += 1
        return losses

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        for generator in (generator for shard in self.state.streams for generator in shard.values()):
            if generator.device.type == "cuda":  # (streamed frames are drawn on the host, outside the graph)
                graph.register_generator_state(generator)  # replays advance each stream, as eager steps would
        self.state.nets.opt_d.zero_grad(set_to_none=True)  # the graph's backward passes allocate the gradients
        self.state.nets.opt_g.zero_grad(set_to_none=True)
        try:
            with torch.cuda.graph(graph):
                self.graph_losses = self._eager_step()
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunError(
                f"CUDA graph capture of the training step failed ({first_line}); "
                "train without --cuda-graph (the last checkpoint is intact)"
            ) from error
        self.graph = graph


def step_on_random_frames(config: TrainConfig, n_frames: int) -> TrainStep:
    """The real step of `config` on one device over `n_frames` random frames drawn from its seed, writing
    nothing: what `train --dry-run` runs once and bench/train.py times and checks."""
    world = World(rank=0, size=1, device=pick_device(config.device))
    generator = torch.Generator().manual_seed(config.seed)
    frames = torch.randint(0, 256, (n_frames, *config.model.size_px, 3), generator=generator, dtype=torch.uint8)
    return TrainStep(new_state(config, world), RealFrames(frames.to(world.device)), config, world)


def train_step(
    state: TrainingState,
    real: RealFrames | StreamedFrames,
    config: TrainConfig,
    world: World,
    amp_dtype,
    ema_decay: torch.Tensor,
    regularise: bool,
) -> torch.Tensor:
    """One optimisation step; returns this rank's (D loss, G loss) as a (2,) tensor left on the device.

    Each batch shard this rank holds (`state.streams`, one dict of random streams per shard) is sampled,
    normalised and differentiated on its own, as if it were a rank of its own; gradients add up over
    the shards and `average_gradients` makes them the mean over all the run's shards.
    `ema_decay` is EMA-G's decay for this step as a 0-dim tensor on the device (see `update_ema`).
    `amp_dtype` is the autocast dtype (None: float32). `regularise`: this step adds D's gradient penalties (if the
    config has them), `gradient_penalty_every_steps` times as strong, since the steps between go without.
    """
    nets, streams = state.nets, state.streams
    shard_batch = config.batch_size // world.size // len(streams)
    # no autocast weight cache: a CUDA graph must not record casts of a cache it does not own
    forward_autocast = autocast(world.device, amp_dtype, cache_enabled=False)

    # D step: real frames should score high, G's frames (detached: D's step must not move G) low
    nets.opt_d.zero_grad(set_to_none=True)
    penalise = regularise and config.gradient_penalty > 0  # R1 + R2: D's inputs are differentiated too
    penalty_weight = config.gradient_penalty / 2 * config.gradient_penalty_every_steps
    fakes, reals, d_losses = [], [], []
    for position, shard in enumerate(streams):
        # sample
        real_images = real.sample(position, shard_batch, config.flip, shard["batch"])  # (b, 3, H, W) in [-1, 1]
        z = sample_latents(shard_batch, config.model.z_dim, config.model.latent, shard["latent"])  # (b, z_dim)
        use_shard_buffers(nets, position)
        with forward_autocast:
            fake = nets.G_forward(z)  # (b, 3, H, W)
            real_in = diff_augment(real_images, config.augment, shard["augment"]).requires_grad_(penalise)
            fake_in = diff_augment(fake.detach(), config.augment, shard["augment"]).requires_grad_(penalise)
            real_scores, fake_scores = nets.D_forward(real_in), nets.D_forward(fake_in)  # (b,) each
            loss_d = d_loss(config.loss, real_scores, fake_scores)
            if penalise:
                r1_r2 = gradient_penalty(real_scores, real_in) + gradient_penalty(fake_scores, fake_in)
                loss_d = loss_d + penalty_weight * r1_r2
        loss_d.backward()  # adds this shard's gradients to the others'
        fakes.append(fake)
        reals.append(real_in.detach() if config.loss in PAIRED_LOSSES else None)  # kept only where G's loss reads it
        d_losses.append(loss_d.detach().float())
    average_gradients(nets.D.parameters(), world, len(streams))
    nets.opt_d.step()

    # G step: the same frames should now score high; D is frozen so its weight gradients are skipped
    nets.D.requires_grad_(False)
    nets.opt_g.zero_grad(set_to_none=True)
    g_losses = []
    for position, (shard, fake, real_in) in enumerate(zip(streams, fakes, reals)):
        use_shard_buffers(nets, position)
        with forward_autocast:
            fake_scores = nets.D_forward(diff_augment(fake, config.augment, shard["augment"]))  # (b,)
            real_scores = None if real_in is None else real_scores_for_g(nets.D_forward, real_in)
            loss_g = g_loss(config.loss, fake_scores, real_scores)
        loss_g.backward()
        g_losses.append(loss_g.detach().float())
    nets.D.requires_grad_(True)
    average_gradients(nets.G.parameters(), world, len(streams))
    nets.opt_g.step()

    # EMA
    update_ema(nets.G_ema, nets.G, ema_decay)
    return torch.stack([torch.stack(d_losses), torch.stack(g_losses)], dim=1).mean(0)  # (held shards, 2) -> (2,)


@torch.no_grad()
def real_scores_for_g(D_forward: torch.nn.Module, real_in: torch.Tensor) -> torch.Tensor:
    """D's (updated) scores (b,) of the D step's augmented real frames, for a paired G loss: constants to G."""
    return D_forward(real_in)


@torch.no_grad()
def update_ema(G_ema: Generator, G: Generator, decay: torch.Tensor) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G for weights; BatchNorm statistics are copied.

    `decay` is a 0-dim tensor on the weights' device, not a Python number, so that a recorded CUDA graph
    reads each step's value instead of baking in the first one.
    """
    weight = 1 - decay
    for ema_param, param in zip(G_ema.parameters(), G.parameters()):
        ema_param.lerp_(param, weight)
    for ema_buffer, buffer in zip(G_ema.buffers(), G.buffers()):
        ema_buffer.copy_(buffer)
