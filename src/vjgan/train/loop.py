"""The training loop: a frame store in, a run directory of checkpoints, snapshots and logs out.

`train` is one function in named phases (step, log, snapshot, checkpoint, stop); the maths of one
step (sample, D step, G step, EMA) lives in `train.step`. Cadences are counted in images
seen, so runs at different batch sizes and on different numbers of ranks stay comparable.

Speed: the whole uint8 store is on the device and every batch is indexed, normalised and flipped
there (a store larger than the data budget is read from disk a few steps ahead instead: train.data);
the host never waits for the device except at log, snapshot and checkpoint time; images are
channels_last; bf16 autocast where the hardware has it; fused Adam on CUDA; optional torch.compile
and, on CUDA, the whole step replayed as one CUDA graph (`--cuda-graph`).

Determinism: every random choice comes from a torch.Generator seeded from the run's seed (batch
indices and flips, latents, augmentation: each batch shard its own), and every generator's state is in
each checkpoint, with the open log window's loss sums. On CPU a run resumed after any kill repeats
the uninterrupted run bit for bit: weights, log records and snapshot frames.
"""

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vjgan.console import console
from vjgan.errors import OutputError, RunError
from vjgan.model.networks import latent_from_gaussian, to_uint8
from vjgan.run import checkpoint as ckpt
from vjgan.run.directory import RunDir
from vjgan.run.snapshots import SnapshotStore, write_preview
from vjgan.train.config import TrainConfig
from vjgan.train.data import RealFrames, StreamedFrames, load_training_data
from vjgan.train.distributed import World, mean_over_ranks, on_main_rank, start_world, stop_world, wait_for_every_rank
from vjgan.train.session import StopRequest, TrainingProgress
from vjgan.train.state import (
    Networks,
    TrainingState,
    diverged_error,
    new_state,
    restore_checkpoint,
    save_checkpoint,
    settle_batchnorm_statistics,
)
from vjgan.train.step import TrainStep, step_on_random_frames


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    images_seen: int
    step: int
    finished: bool  # the schedule is complete (False: stopped early by the time budget)
    checkpoint: Path | None  # the newest checkpoint
    reports: bool = True  # this process prints the outcome (under torchrun: rank 0 only)


def train(config: TrainConfig, run_dir: Path, *, force: bool = False, resume_from: Path | None = None) -> TrainResult:
    """Train (or continue training) the run in `run_dir` on the frame store `config.store`.

    Re-running with the same config resumes from the newest checkpoint; `resume_from` continues from
    a chosen checkpoint instead (and may change training settings, not the model); `force` starts an
    existing run over. Under torchrun, every rank calls this; rank 0 alone writes files.

    The store is recorded resolved, so the run resumes from any working directory; a store given at
    another path than the run's is accepted when its manifest shows it is the same store (run.directory).
    A damaged newest checkpoint is kept aside and the newest whole one resumed from, in one line.
    """
    if force and resume_from is not None:
        raise RunError(f"{run_dir}: --force starts the run over and --resume-from continues it; give one of them")
    if config.store:
        resolved = tuple(str(Path(store).resolve()) for store in config.stores)
        config = dataclasses.replace(config, store=resolved[0] if len(resolved) == 1 else resolved)
    session_start = time.monotonic()
    world = start_world(config.device)
    try:
        if config.batch_size % world.size:
            raise RunError(f"{run_dir}: batch size {config.batch_size} does not split over {world.size} ranks")
        with contextlib.closing(load_training_data(config, world)) as real:  # on the device, or streamed from disk
            return _train(config, real, RunDir(run_dir), world, force, resume_from, session_start)
    finally:
        stop_world(world)


def _train(
    config: TrainConfig,
    real: RealFrames | StreamedFrames,
    run: RunDir,
    world: World,
    force: bool,
    resume_from: Path | None,
    session_start: float,
) -> TrainResult:
    if resume_from is not None:
        require_same_model(Path(resume_from), config)
    on_main_rank(world, lambda: prepare_run(run, config, force, resume_from))
    start_checkpoint = Path(resume_from) if resume_from is not None else ckpt.latest_checkpoint(run.path)
    state = new_state(config, world, real.draw_device)
    if start_checkpoint is not None:
        restore_checkpoint(start_checkpoint, config, state, world)
    counters = state.counters
    keep_up_to_images = counters.images_seen if start_checkpoint is not None else -1  # -1: a new run keeps nothing
    recorded_snapshots = ckpt.read_metadata(start_checkpoint).get(ckpt.SNAPSHOTS_KEY) if start_checkpoint is not None else None
    snapshots = on_main_rank(world, lambda: align_run_files(run, config, keep_up_to_images, recorded_snapshots))
    if world.is_main:
        run.write_noise_bank(state.noise_bank)
    bank_latents = latent_from_gaussian(state.noise_bank, config.model.latent)  # (bank, z_dim): what snapshots render
    nets = state.nets
    if start_checkpoint is None:  # a new run: its first frame and first checkpoint, before any training
        settle_batchnorm_statistics(state, config, world)
        if world.is_main:
            take_snapshot(nets, bank_latents, snapshots, run, counters.images_seen)
        save_checkpoint(run, config, state, world)
    if counters.images_seen >= config.images_total:
        if world.is_main:
            console.print(f"{run.path}: already trained on {counters.images_seen:,} images; raise --images to train further")
        return finish_session(run, counters.images_seen, counters.step, True, world)

    step = TrainStep(state, real, config, world)
    stop = StopRequest(config.minutes, session_start)
    progress = TrainingProgress(run, config, counters.images_seen, enabled=world.is_main, stop=stop)
    loop_start, seconds_before = time.monotonic(), counters.seconds
    window_start, window_images = loop_start, 0
    finished = False
    try:
        with progress, stop:
            while True:
                # step: sample, D step, G step, EMA
                losses = step(counters.images_seen)
                images_before = counters.images_seen
                counters.images_seen += config.batch_size
                counters.step += 1
                counters.window_steps += 1
                window_images += config.batch_size
                state.loss_sums += losses
                finished = counters.images_seen >= config.images_total
                progress.advance(counters.images_seen)

                # log (the host's only regular wait for the device)
                at_log_step = counters.step % config.log_every_steps == 0 or finished
                if at_log_step:
                    now = time.monotonic()
                    counters.seconds = seconds_before + now - loop_start
                    record = close_log_window(run, state, window_images / (now - window_start), world)
                    progress.show(record)
                    state.loss_sums.zero_()
                    counters.window_steps = 0
                    window_start, window_images = now, 0

                # snapshot, checkpoint, or stop at the time budget / on Ctrl-C (after a checkpoint, so no work is lost)
                snapshot_due = crossed(images_before, counters.images_seen, config.snapshot_every_images) or finished
                stop_now = not finished and stop.agreed(world, at_log_step)
                at_checkpoint = crossed(images_before, counters.images_seen, config.checkpoint_every_images)
                checkpoint_due = at_checkpoint or finished or stop_now
                if snapshot_due or checkpoint_due:  # EMA-G's statistics, once for both
                    settle_batchnorm_statistics(state, config, world)
                if snapshot_due and world.is_main:
                    take_snapshot(nets, bank_latents, snapshots, run, counters.images_seen)
                if checkpoint_due:
                    counters.seconds = seconds_before + time.monotonic() - loop_start
                    save_checkpoint(run, config, state, world)
                if finished or stop_now:
                    break
    except BaseException:
        if world.is_main:
            with contextlib.suppress(OutputError):  # the failure being raised is the one to report
                run.write_loss_plot()
        raise
    if world.is_main:
        run.write_loss_plot()
    if stop.interrupted:
        raise KeyboardInterrupt
    return finish_session(run, counters.images_seen, counters.step, finished, world)


def finish_session(run: RunDir, images_seen: int, step: int, finished: bool, world: World) -> TrainResult:
    """Every rank waits here for rank 0's last file, so each reports the newest checkpoint (a rank used to list
    the one before it), and the ranks leave the process group together."""
    wait_for_every_rank(world)
    saved = ckpt.list_checkpoints(run.path)  # the newest is whole (written now, or resumed from): no need to read it
    newest_saved = saved[-1][1] if saved else None  # (none on a rank of another machine)
    return TrainResult(run.path, images_seen, step, finished, newest_saved, reports=world.is_main)


def dry_run(config: TrainConfig) -> dict[str, float]:
    """One step on random frames and one snapshot render, writing nothing (pytorch/examples dcgan's
    --dry-run): checks in seconds that a config builds, trains and renders on this machine."""
    step = step_on_random_frames(config, config.batch_size)
    losses = step(images_seen=0)
    device = step.world.device
    with torch.no_grad():
        bank_latents = latent_from_gaussian(step.state.noise_bank, config.model.latent)
        snapshot = step.state.nets.G_ema(bank_latents)  # (bank, 3, H, W)
    d_value, g_value = losses.tolist()
    return {"d_loss": d_value, "g_loss": g_value, "snapshot_shape": tuple(snapshot.shape), "device": str(device)}


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: cadences in images, whatever the batch size."""
    return after // every > before // every


@torch.no_grad()
def take_snapshot(nets: Networks, bank_latents, snapshots: SnapshotStore, run: RunDir, images_seen: int) -> None:
    """Render the noise bank with EMA-G (float32, eval mode), append it, refresh preview.png."""
    images = nets.G_ema(bank_latents)  # (bank, 3, H, W)
    frames = to_uint8(images).cpu().numpy()  # (bank, H, W, 3) uint8
    snapshots.append(images_seen, frames)
    write_preview(run.preview_path, frames)


def close_log_window(run: RunDir, state: TrainingState, images_per_second: float, world: World) -> dict:
    """Average the window's losses over steps and ranks, refuse NaN/inf, and append a log record."""
    counters = state.counters
    d_mean, g_mean = (mean_over_ranks(state.loss_sums, world) / counters.window_steps).tolist()
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


def require_same_model(path: Path, config: TrainConfig) -> None:
    """A chosen checkpoint may continue with other training settings, never as another model."""
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint")
    stored = ckpt.checkpoint_config(ckpt.read_metadata(path), path)
    if stored.model != config.model:
        raise RunError(f"{path}: a checkpoint of another model ({stored.model}); it cannot continue as {config.model}")


def prepare_run(run: RunDir, config: TrainConfig, force: bool, resume_from: Path | None) -> None:
    """Create or re-open the run (rank 0), remove what killed processes left half-written, and keep
    damaged checkpoints aside so every rank then finds the same newest whole one."""
    run.prepare(config, force, settings_may_change=resume_from is not None)
    run.remove_leftovers()
    ckpt.remove_temporary_files(run.path)
    if resume_from is None:
        ckpt.set_aside_damaged(run.path)


def align_run_files(run: RunDir, config: TrainConfig, images_seen: int, recorded_snapshots: list[int] | None) -> SnapshotStore:
    """Cut log, snapshots and checkpoints back to `images_seen`, the point training continues from,
    repairing a log line or a snapshot index that a kill or a full disk damaged (`recorded_snapshots`:
    the checkpoint's copy of the snapshot index).

    After a kill they may run ahead of the newest checkpoint; after `--resume-from` an abandoned
    continuation follows it. Either way, what comes after is about to be trained again.
    (-1 for a new run: a run killed before its first checkpoint starts over from nothing.)
    """
    for seen, path in ckpt.list_checkpoints(run.path):
        if seen > images_seen:
            path.unlink()
    run.truncate_log(images_seen)
    return SnapshotStore.open_for_writing(run.path, config.noise_bank_size, config.model.size_px, images_seen, recorded_snapshots)
