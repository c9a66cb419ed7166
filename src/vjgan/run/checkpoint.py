"""Checkpoints: one self-describing safetensors file per save, written atomically, newest few kept.

A checkpoint holds every tensor a run needs to continue as if it had never stopped (G, EMA-G, D,
both Adam states, every random generator's state, the noise bank, the open log window's loss sums)
and, as JSON strings in the safetensors metadata, the resolved config, the counters, the snapshot
rows it covers (so a lost snapshot index can be rebuilt) and a SHA-256 of its tensors (so a file
damaged on the disk is recognised, not trained on). Nothing is read from file names and nothing is
pickled: loading a checkpoint cannot run code.

A damaged checkpoint (cut short, bits flipped, not safetensors) never stops a run: the newest one that
reads whole is used, and resuming training keeps the damaged file aside as `<name>.damaged`.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from vjgan.console import console, printable
from vjgan.errors import RunError
from vjgan.files import PARTIAL_SUFFIX, atomic_path
from vjgan.model.networks import Generator
from vjgan.run.snapshots import indexed_images_seen
from vjgan.train.config import TrainConfig, config_from_dict

CHECKPOINT_FORMAT = "vjgan-checkpoint"
CHECKPOINT_VERSION = 1
KEEP_NEWEST = 3  # checkpoints kept per run; older ones are deleted after each save
SUFFIX = ".safetensors"
DAMAGED_SUFFIX = ".damaged"  # a checkpoint that did not read whole, kept for a person to look at
LEFTOVER_SUFFIXES = (".tmp", PARTIAL_SUFFIX)  # half-written saves of a killed process (".tmp": older vjgan)
DIGEST_KEY = "tensors_sha256"
SNAPSHOTS_KEY = "snapshots_images_seen"


@dataclass
class Counters:
    """How far a run has come; saved in every checkpoint's metadata as `counters`."""

    images_seen: int = 0  # images D has seen as real, all ranks together
    step: int = 0  # optimisation steps
    seconds: float = 0.0  # wall-clock training time, all sessions together
    window_steps: int = 0  # steps summed in the open log window


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def write_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save atomically (files.atomic_path) and only then delete all but the newest `KEEP_NEWEST`.

    `metadata` must hold `counters` with `images_seen`; each value is stored as a JSON string, with the
    tensors' digest and the snapshot rows taken so far. The name carries images seen for people
    browsing the folder; code reads the metadata instead.
    """
    folder = checkpoints_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"images-{metadata['counters']['images_seen']:012d}{SUFFIX}"
    cpu_tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    header = {
        "format": CHECKPOINT_FORMAT,
        "version": str(CHECKPOINT_VERSION),
        DIGEST_KEY: json.dumps(tensors_digest(cpu_tensors)),
    }
    snapshots = indexed_images_seen(run_dir)
    if snapshots is not None:
        header[SNAPSHOTS_KEY] = json.dumps(snapshots)
    header.update({name: json.dumps(value) for name, value in metadata.items()})
    with atomic_path(path, "a checkpoint") as partial:
        save_file(cpu_tensors, str(partial), metadata=header)
    for _, old in list_checkpoints(run_dir)[:-KEEP_NEWEST]:
        old.unlink()
    return path


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(images_seen, path) of every checkpoint whose header reads, oldest first (their tensors unread)."""
    return _scan(run_dir)[0]


def _scan(run_dir: Path) -> tuple[list[tuple[int, Path]], list[tuple[Path, str]]]:
    """Checkpoints whose header reads (images_seen, path), oldest first, and those whose header does not."""
    folder = checkpoints_dir(run_dir)
    readable, damaged = [], []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            readable.append((read_metadata(path)["counters"]["images_seen"], path))
        except RunError as error:
            damaged.append((path, str(error)))
    return sorted(readable), damaged


def newest_checkpoint(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that reads whole, and the damaged ones (path, reason) passed over on the way."""
    path, _, damaged = read_newest_checkpoint(run_dir)
    return path, damaged


def read_newest_checkpoint(run_dir: Path, device: torch.device | str = "cpu"):
    """(path, (tensors, metadata), damaged) of the newest checkpoint that reads whole, read once: finding
    it means reading it. (None, None, damaged) when none does."""
    readable, damaged = _scan(run_dir)
    for _, path in reversed(readable):
        try:
            return path, read_checkpoint(path, device), damaged
        except RunError as error:
            damaged.append((path, str(error)))
    return None, None, damaged


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that reads whole (damaged newer ones are passed over)."""
    return newest_checkpoint(run_dir)[0]


def damaged_line(damaged: list[tuple[Path, str]], newest: Path | None, kept_aside: bool) -> str:
    """One line naming the damaged checkpoints and what is used instead."""
    names = ", ".join(path.name for path, _ in damaged)
    reasons = "; ".join(reason.removeprefix(f"{path}: ") for path, reason in damaged)
    aside = f"kept aside as <name>{DAMAGED_SUFFIX}; " if kept_aside else ""
    using = f"using {newest.name}" if newest is not None else "no whole checkpoint is left"
    return printable(f"{checkpoints_dir(damaged[0][0].parent.parent)}: damaged checkpoint {names} ({reasons}); {aside}{using}")


def set_aside_damaged(run_dir: Path) -> Path | None:
    """At resume: rename damaged checkpoints to `<name>.damaged` (never deleted, ignored afterwards), say so
    in one line, and return the newest whole checkpoint (None: start from nothing)."""
    newest, damaged = newest_checkpoint(run_dir)
    for path, _ in damaged:
        aside = path.with_name(path.name + DAMAGED_SUFFIX)
        number = 1
        while aside.exists():
            number += 1
            aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{number}")
        os.replace(path, aside)
    if damaged:
        console.print(damaged_line(damaged, newest, kept_aside=True), markup=False, soft_wrap=True)
    return newest


def remove_temporary_files(run_dir: Path) -> None:
    """Half-written checkpoints left by a killed process (`.partial`, or `.tmp` from older versions)."""
    folder = checkpoints_dir(run_dir)
    for suffix in LEFTOVER_SUFFIXES:
        for leftover in folder.glob(f"*{SUFFIX}{suffix}"):
            leftover.unlink()


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as reader:
            header = reader.metadata() or {}
        if header.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{path}: not a vjgan checkpoint")
        return {name: json.loads(value) for name, value in header.items() if name not in ("format", "version")}
    except (OSError, SafetensorError, ValueError) as error:
        raise unreadable(path, error) from None


def unreadable(path: Path, error: BaseException) -> RunError:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return RunError(f"{path}: not a readable checkpoint ({first_line})")


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint, its digest checked (when it has one); tensors are placed on `device`."""
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as error:
        raise unreadable(path, error) from None
    expected = metadata.pop(DIGEST_KEY, None)
    if expected is not None and tensors_digest(tensors) != expected:
        raise RunError(f"{path}: damaged checkpoint (its tensors do not match their SHA-256)")
    return {name: tensor.to(device) for name, tensor in tensors.items()}, metadata


def read_counters(path: Path) -> Counters:
    """The counters of a checkpoint, without reading its tensors."""
    return Counters(**read_metadata(path)["counters"])


def checkpoint_config(metadata: dict[str, Any], path: Path) -> TrainConfig:
    return config_from_dict(metadata["config"], path)


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": tensor for name, tensor in module.state_dict().items()}


def load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Load the `prefix.`-named tensors into `module`; a mismatch means the checkpoint is of another model."""
    start = prefix + "."
    state = {name[len(start) :]: tensor for name, tensor in tensors.items() if name.startswith(start)}
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise RunError(f"{path}: weights do not fit this model ({first_line})") from None


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Per-parameter optimizer state as `prefix.<param index>.<name>` tensors (Adam: step, exp_avg, exp_avg_sq)."""
    state = optimizer.state_dict()["state"]
    return {
        f"{prefix}.{index}.{name}": value
        for index, values in state.items()
        for name, value in values.items()
        if torch.is_tensor(value)
    }


def optimizer_hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The param groups' settings (lr, betas, ...) for the checkpoint's self-description."""
    groups = optimizer.state_dict()["param_groups"]
    return [{name: value for name, value in group.items() if name != "params"} for group in groups]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Restore the per-parameter state; the hyperparameters stay those of the config the run uses now."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    start = prefix + "."
    for name, tensor in tensors.items():
        if name.startswith(start):
            index, key = name[len(start) :].split(".", 1)
            state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    # Saved tensors are contiguous; give moment buffers their parameter's memory format (channels_last)
    # again, which the foreach / fused Adam kernels need for their fast path.
    for group in optimizer.param_groups:
        for param in group["params"]:
            values = optimizer.state.get(param, {})
            for key, value in values.items():
                if value.shape == param.shape and value.stride() != param.stride():
                    values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def load_generator(
    run_dir: Path, checkpoint: Path | None = None, device: torch.device | str = "cpu"
) -> tuple[Generator, TrainConfig]:
    """The EMA generator of the newest (or given) checkpoint of a run, in eval mode, and the run's config."""
    run_dir = Path(run_dir)
    if checkpoint is None:
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: no such run directory")
        checkpoint, contents, damaged = read_newest_checkpoint(run_dir, device)
        if damaged:
            console.print(damaged_line(damaged, checkpoint, kept_aside=False), markup=False, soft_wrap=True)
        if checkpoint is None:
            raise RunError(f"{run_dir}: the run has no checkpoints yet; train it first (vjgan train ... --run {run_dir})")
    else:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise RunError(f"{checkpoint}: no such checkpoint")
        contents = read_checkpoint(checkpoint, device)
    tensors, metadata = contents
    config = checkpoint_config(metadata, checkpoint)
    generator = Generator(config.model).to(device)
    load_module(generator, tensors, "G_ema", checkpoint)
    return generator.eval().requires_grad_(False), config
