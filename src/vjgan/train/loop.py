"""The training loop: a frame store in, a run directory of checkpoints, snapshots and logs out.

`train` is one function in named phases (sample, D step, G step, EMA, log, snapshot, checkpoint,
stop); the maths of one step lives in the small functions below it. Cadences are counted in images
seen, so runs at different batch sizes and on different numbers of ranks stay comparable.

Speed: the whole uint8 store is on the device and every batch is indexed, normalised and flipped
there; the host never waits for the device except at log, snapshot and checkpoint time; images are
channels_last; bf16 autocast where the hardware has it; fused Adam on CUDA; optional torch.compile.

Determinism: every random choice comes from a torch.Generator seeded from the run's seed (batch
indices and flips, latents, augmentation: each rank its own), and every generator's state is in
each checkpoint, with the open log window's loss sums. On CPU a run resumed after any kill repeats
the uninterrupted run bit for bit: weights, log records and snapshot frames.
"""

import copy
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import TextColumn

from vjgan.console import console, make_progress
from vjgan.errors import RunError, StoreError
from vjgan.footage.store import FrameStore
from vjgan.model.augment import diff_augment, random_flip
from vjgan.model.losses import d_loss, g_loss
from vjgan.model.networks import Discriminator, Generator, sample_latents, to_uint8
from vjgan.train import checkpoint as ckpt
from vjgan.train.config import TrainConfig, config_to_dict
from vjgan.train.distributed import (
    World,
    any_rank,
    average_buffers,
    average_gradients,
    broadcast_module,
    gather_tensors,
    mean_over_ranks,
    on_main_rank,
    start_world,
    stop_world,
)
from vjgan.train.hardware import autocast_dtype, pick_device
from vjgan.train.rundir import RunDir
from vjgan.train.snapshots import SnapshotStore, write_preview

STREAMS = ("batch", "latent", "augment")  # one random generator per kind of choice, per rank
NOISE_BANK_STREAM = len(STREAMS)  # the bank is drawn once, the same on every rank and device
WEIGHTS_STREAM = len(STREAMS) + 1  # initial weights, the same on every rank and device


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    images_seen: int
    step: int
    finished: bool  # the schedule is complete (False: stopped early by the time budget)
    checkpoint: Path | None  # the newest checkpoint


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


def train(config: TrainConfig, run_dir: Path, *, force: bool = False, resume_from: Path | None = None) -> TrainResult:
    """Train (or continue training) the run in `run_dir` on the frame store `config.store`.

    Re-running with the same config resumes from the newest checkpoint; `resume_from` continues from
    a chosen checkpoint instead (and may change training settings, not the model); `force` starts an
    existing run over. Under torchrun, every rank calls this; rank 0 alone writes files.
    """
    session_start = time.monotonic()
    world = start_world(config.device)
    try:
        return _train(config, RunDir(run_dir), world, force, resume_from, session_start)
    finally:
        stop_world(world)


def _train(config, run: RunDir, world: World, force, resume_from, session_start) -> TrainResult:
    if config.batch_size % world.size:
        raise RunError(f"{run.path}: batch size {config.batch_size} does not split over {world.size} ranks")
    rank_batch = config.batch_size // world.size
    frames = load_frames(config, world.device)  # (N, H, W, 3) uint8, on the device
    on_main_rank(world, lambda: run.prepare(config, force, settings_may_change=resume_from is not None))
    start_checkpoint = Path(resume_from) if resume_from is not None else ckpt.latest_checkpoint(run.path)
    amp_dtype = autocast_dtype(config.precision, world.device)
    nets = build_networks(config, world)
    streams = make_streams(config.seed, world)
    noise_bank = draw_noise_bank(config).to(world.device)  # (bank, z_dim)
    counters, loss_sums = Counters(), torch.zeros(2, device=world.device)  # (D, G) loss sums of the open window
    if start_checkpoint is not None:
        counters, loss_sums, noise_bank = restore(start_checkpoint, config, nets, streams, world)
    keep_up_to_images = counters.images_seen if start_checkpoint is not None else -1  # -1: a new run keeps nothing
    snapshots = on_main_rank(world, lambda: align_run_files(run, config, keep_up_to_images))
    if world.is_main:
        run.write_noise_bank(noise_bank)
    if start_checkpoint is None:  # a new run: its first frame and first checkpoint, before any training
        if world.is_main:
            take_snapshot(nets, noise_bank, snapshots, run, counters.images_seen)
        save(run, config, nets, streams, noise_bank, counters, loss_sums, world)
    if counters.images_seen >= config.images_total:
        if world.is_main:
            console.print(f"{run.path}: already trained on {counters.images_seen:,} images; raise --images to train further")
        return TrainResult(run.path, counters.images_seen, counters.step, True, ckpt.latest_checkpoint(run.path))

    ema_beta = 0.5 ** (config.batch_size / config.ema_half_life_images)
    progress = TrainingProgress(run, config, counters.images_seen, enabled=world.is_main)
    stop = StopRequest(config.minutes, session_start)
    loop_start, seconds_before = time.monotonic(), counters.seconds
    window_start, window_images = loop_start, 0
    finished = False
    try:
        with progress, stop:
            while True:
                # sample, D step, G step, EMA
                losses = train_step(nets, frames, rank_batch, config, streams, world, amp_dtype, ema_beta)
                images_before = counters.images_seen
                counters.images_seen += config.batch_size
                counters.step += 1
                counters.window_steps += 1
                window_images += config.batch_size
                loss_sums += losses
                finished = counters.images_seen >= config.images_total
                progress.advance(counters.images_seen)

                # log (the host's only regular wait for the device)
                at_log_step = counters.step % config.log_every_steps == 0 or finished
                if at_log_step:
                    now = time.monotonic()
                    counters.seconds = seconds_before + now - loop_start
                    record = close_log_window(run, counters, loss_sums, window_images / (now - window_start), world)
                    progress.show(record)
                    loss_sums.zero_()
                    counters.window_steps = 0
                    window_start, window_images = now, 0

                # snapshot
                if crossed(images_before, counters.images_seen, config.snapshot_every_images) or finished:
                    share_batchnorm_statistics(nets, world)
                    if world.is_main:
                        take_snapshot(nets, noise_bank, snapshots, run, counters.images_seen)

                # checkpoint, or stop at the time budget / on Ctrl-C (after a checkpoint, so no work is lost)
                stop_now = not finished and stop.agreed(world, at_log_step)
                if crossed(images_before, counters.images_seen, config.checkpoint_every_images) or finished or stop_now:
                    counters.seconds = seconds_before + time.monotonic() - loop_start
                    save(run, config, nets, streams, noise_bank, counters, loss_sums, world)
                if finished or stop_now:
                    break
    finally:
        if world.is_main:
            run.write_loss_plot()
    if stop.interrupted:
        raise KeyboardInterrupt
    return TrainResult(run.path, counters.images_seen, counters.step, finished, ckpt.latest_checkpoint(run.path))


def dry_run(config: TrainConfig) -> dict[str, float]:
    """One step on random frames and one snapshot render, writing nothing (pytorch/examples dcgan's
    --dry-run): checks in seconds that a config builds, trains and renders on this machine."""
    world = World(rank=0, size=1, device=pick_device(config.device))
    generator = torch.Generator().manual_seed(config.seed)
    frames = torch.randint(0, 256, (config.batch_size, *config.model.size_px, 3), generator=generator, dtype=torch.uint8)
    nets = build_networks(config, world)
    ema_beta = 0.5 ** (config.batch_size / config.ema_half_life_images)
    amp_dtype = autocast_dtype(config.precision, world.device)
    losses = train_step(nets, frames.to(world.device), config.batch_size, config, make_streams(config.seed, world), world, amp_dtype, ema_beta)
    with torch.no_grad():
        snapshot = nets.G_ema(draw_noise_bank(config).to(world.device))  # (bank, 3, H, W)
    d_value, g_value = losses.tolist()
    return {"d_loss": d_value, "g_loss": g_value, "snapshot_shape": tuple(snapshot.shape), "device": str(world.device)}


def train_step(nets: Networks, frames, rank_batch, config, streams, world, amp_dtype, ema_beta) -> torch.Tensor:
    """One optimisation step; returns this rank's (D loss, G loss) as a (2,) tensor left on the device."""
    # sample
    real = sample_real(frames, rank_batch, config.flip, streams["batch"])  # (b, 3, H, W) in [-1, 1]
    z = sample_latents(rank_batch, config.model.z_dim, config.model.latent, streams["latent"])  # (b, z_dim)
    autocast = torch.autocast(world.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None)

    # D step: real frames should score high, G's frames (detached: D's step must not move G) low
    with autocast:
        fake = nets.G_forward(z)  # (b, 3, H, W)
        real_scores = nets.D_forward(diff_augment(real, config.augment, streams["augment"]))  # (b,)
        fake_scores = nets.D_forward(diff_augment(fake.detach(), config.augment, streams["augment"]))  # (b,)
        loss_d = d_loss(config.loss, real_scores, fake_scores)
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    average_gradients(nets.D.parameters(), world)
    nets.opt_d.step()

    # G step: the same frames should now score high; D is frozen so its weight gradients are skipped
    nets.D.requires_grad_(False)
    with autocast:
        loss_g = g_loss(config.loss, nets.D_forward(diff_augment(fake, config.augment, streams["augment"])))
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.D.requires_grad_(True)
    average_gradients(nets.G.parameters(), world)
    nets.opt_g.step()

    # EMA
    update_ema(nets.G_ema, nets.G, ema_beta)
    return torch.stack([loss_d.detach().float(), loss_g.detach().float()])


def sample_real(frames: torch.Tensor, count: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """A random batch of the store's frames (N, H, W, 3) uint8 -> (count, 3, H, W) float in [-1, 1], channels_last."""
    index = torch.randint(len(frames), (count,), generator=generator, device=generator.device).to(frames.device)
    batch = frames[index].permute(0, 3, 1, 2)  # (count, 3, H, W) uint8; NHWC memory is channels_last already
    images = batch.float() / 127.5 - 1  # (count, 3, H, W) float32 in [-1, 1]
    if flip:
        images = random_flip(images, generator)
    return images.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def update_ema(G_ema: Generator, G: Generator, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for weights; BatchNorm statistics are copied."""
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1 - beta)
    for ema_buffer, buffer in zip(G_ema.buffers(), G.buffers()):
        ema_buffer.copy_(buffer)


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: cadences in images, whatever the batch size."""
    return after // every > before // every


def load_frames(config: TrainConfig, device: torch.device) -> torch.Tensor:
    """The whole store as one (N, H, W, 3) uint8 tensor on `device` (100k frames of 96 px are 2.8 GB)."""
    if not config.store:
        raise StoreError("no frame store given; pass DATA_DIR/<genre> (made by vjgan ingest)")
    store = FrameStore.open(Path(config.store))
    if tuple(store.size_px) != config.model.size_px:
        store_h, store_w = store.size_px
        model_h, model_w = config.model.size_px
        raise StoreError(
            f"{store.path}: frames are {store_w}x{store_h} px but the model makes {model_w}x{model_h} px; "
            f"train with --size {store_w}x{store_h} or ingest again at the model's size"
        )
    frames = store.all_frames()
    if len(frames) == 0:
        raise StoreError(f"{store.path}: the frame store is empty; ingest some footage into it first")
    return torch.from_numpy(frames).to(device)


def build_networks(config: TrainConfig, world: World) -> Networks:
    """G, D and EMA-G initialised from the seed on the CPU (the same weights on any device), then moved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(config.seed, WEIGHTS_STREAM))
        G = Generator(config.model).to(world.device, memory_format=torch.channels_last)
        D = Discriminator(config.model).to(world.device, memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    for module in (G, D):
        broadcast_module(module, world)
    adam = dict(lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, fused=world.device.type == "cuda")
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
    """The fixed latents every snapshot renders: (bank, z_dim), drawn once from the run's seed on the CPU."""
    generator = torch.Generator().manual_seed(stream_seed(config.seed, NOISE_BANK_STREAM))
    return sample_latents(config.noise_bank_size, config.model.z_dim, config.model.latent, generator)


def share_batchnorm_statistics(nets: Networks, world: World) -> None:
    """Average G's per-rank BatchNorm statistics and hand them to EMA-G, so every rank holds one model."""
    if world.size > 1:
        average_buffers(nets.G, world)
        with torch.no_grad():
            for ema_buffer, buffer in zip(nets.G_ema.buffers(), nets.G.buffers()):
                ema_buffer.copy_(buffer)


@torch.no_grad()
def take_snapshot(nets: Networks, noise_bank: torch.Tensor, snapshots: SnapshotStore, run: RunDir, images_seen: int) -> None:
    """Render the noise bank with EMA-G (float32, eval mode), append it, refresh preview.png."""
    images = nets.G_ema(noise_bank)  # (bank, 3, H, W)
    frames = to_uint8(images).cpu().numpy()  # (bank, H, W, 3) uint8
    snapshots.append(images_seen, frames)
    write_preview(run.preview_path, frames)


def close_log_window(run: RunDir, counters: Counters, loss_sums: torch.Tensor, images_per_second: float, world: World) -> dict:
    """Average the window's losses over steps and ranks, refuse NaN/inf, and append a log record."""
    d_mean, g_mean = (mean_over_ranks(loss_sums, world) / counters.window_steps).tolist()
    if not (math.isfinite(d_mean) and math.isfinite(g_mean)):
        raise diverged_error(run, counters.images_seen, f"d_loss={d_mean}, g_loss={g_mean}")
    record = {
        "step": counters.step,
        "images_seen": counters.images_seen,
        "d_loss": d_mean,
        "g_loss": g_mean,
        "images_per_second": round(images_per_second, 2),
        "seconds": round(counters.seconds, 2),
    }
    if world.is_main:
        run.append_log(record)
    return record


def diverged_error(run: RunDir, images_seen: int, what: str) -> RunError:
    last_good = ckpt.latest_checkpoint(run.path)
    return RunError(
        f"{run.path}: training diverged before {images_seen:,} images ({what}); the last good checkpoint "
        f"{last_good} is intact: re-run with --resume-from {last_good} and a lower --lr or another --seed"
    )


def save(run, config, nets: Networks, streams, noise_bank, counters: Counters, loss_sums, world: World) -> None:
    """Write a checkpoint (rank 0), unless the weights or the open window hold NaN/inf (then stop)."""
    share_batchnorm_statistics(nets, world)
    weights = [*nets.G.parameters(), *nets.D.parameters()]
    finite = bool(torch.stack([torch.isfinite(w).all() for w in weights] + [torch.isfinite(loss_sums).all()]).all())
    if any_rank(not finite, world):
        raise diverged_error(run, counters.images_seen, "weights or losses became NaN/inf")
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
        "optimizers": {"G": ckpt.optimizer_hyperparameters(nets.opt_g), "D": ckpt.optimizer_hyperparameters(nets.opt_d)},
    }
    if world.is_main:
        ckpt.write_checkpoint(run.path, tensors, metadata)


def restore(path: Path, config: TrainConfig, nets: Networks, streams, world: World):
    """Load a checkpoint into the networks and streams; returns (counters, loss_sums, noise_bank).

    Resuming on another number of ranks is allowed: ranks the checkpoint has no state for are
    seeded afresh from the run's seed, their rank and the images seen.
    """
    tensors, metadata = ckpt.read_checkpoint(path, world.device)
    stored = ckpt.checkpoint_config(metadata, path)
    if stored.model != config.model:
        raise RunError(f"{path}: a checkpoint of another model ({stored.model}); it cannot continue as {config.model}")
    for prefix in ("G", "G_ema", "D"):
        ckpt.load_module(getattr(nets, prefix), tensors, prefix, path)
    ckpt.load_optimizer(nets.opt_g, tensors, "opt_g")
    ckpt.load_optimizer(nets.opt_d, tensors, "opt_d")
    counters = Counters(**metadata["counters"])
    for index, (name, generator) in enumerate(streams.items()):
        state = tensors.get(f"rng.{name}.rank{world.rank}")
        if state is not None:
            generator.set_state(state.cpu())
        else:
            generator.manual_seed(stream_seed(config.seed, index, world.rank) ^ counters.images_seen)
    loss_sums = tensors.get(f"loss_sums.rank{world.rank}", torch.zeros(2, device=world.device))
    return counters, loss_sums, tensors["noise_bank"]


def align_run_files(run: RunDir, config: TrainConfig, images_seen: int) -> SnapshotStore:
    """Cut log, snapshots and checkpoints back to `images_seen`, the point training continues from.

    After a kill they may run ahead of the newest checkpoint; after `--resume-from` an abandoned
    continuation follows it. Either way, what comes after is about to be trained again.
    (-1 for a new run: a run killed before its first checkpoint starts over from nothing.)
    """
    ckpt.remove_temporary_files(run.path)
    for seen, path in ckpt.list_checkpoints(run.path):
        if seen > images_seen:
            path.unlink()
    run.truncate_log(images_seen)
    snapshots = SnapshotStore.open_for_writing(run.path, config.noise_bank_size, config.model.size_px)
    snapshots.truncate(images_seen)
    return snapshots


class StopRequest:
    """Ends a session cleanly at the time budget or on Ctrl-C / SIGTERM (a second Ctrl-C aborts at once)."""

    def __init__(self, minutes: float | None, session_start: float):
        self.deadline = None if minutes is None else session_start + minutes * 60
        self.interrupted = False
        self._previous_handlers = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[number] = signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)

    def _on_signal(self, number, frame):
        self.interrupted = True
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)

    def agreed(self, world: World, at_log_step: bool) -> bool:
        """Whether to stop now; under torchrun the ranks agree at log steps (a collective)."""
        if world.size > 1 and not at_log_step:
            return False
        time_is_up = self.deadline is not None and time.monotonic() >= self.deadline
        return any_rank(time_is_up or self.interrupted, world)


class TrainingProgress:
    """The progress bar (rank 0): images seen / total, images/s, D and G loss, ETA."""

    def __init__(self, run: RunDir, config: TrainConfig, images_seen: int, enabled: bool):
        self.enabled = enabled
        self.bar = make_progress(
            TextColumn("{task.fields[rate]} img/s"),
            TextColumn("D {task.fields[d_loss]}"),
            TextColumn("G {task.fields[g_loss]}"),
        )
        self.task = self.bar.add_task(
            f"train {run.path.name}", total=config.images_total, completed=images_seen, rate="-", d_loss="-", g_loss="-"
        )

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc_info):
        if self.enabled:
            self.bar.stop()

    def advance(self, images_seen: int) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=images_seen)

    def show(self, record: dict) -> None:
        if self.enabled:
            self.bar.update(
                self.task,
                rate=f"{record['images_per_second']:.0f}",
                d_loss=f"{record['d_loss']:.3f}",
                g_loss=f"{record['g_loss']:.3f}",
            )
