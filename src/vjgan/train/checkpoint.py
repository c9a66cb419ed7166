"""Checkpoints: one self-describing safetensors file per save, written atomically, newest few kept.

A checkpoint holds every tensor a run needs to continue as if it had never stopped (G, EMA-G, D,
both Adam states, every random generator's state, the noise bank, the open log window's loss sums)
and, as JSON strings in the safetensors metadata, the resolved config and the counters. Nothing is
read from file names and nothing is pickled: loading a checkpoint cannot run code.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from vjgan.errors import RunError
from vjgan.model.networks import Generator
from vjgan.train.config import TrainConfig, config_from_dict

CHECKPOINT_FORMAT = "vjgan-checkpoint"
CHECKPOINT_VERSION = 1
KEEP_NEWEST = 3  # checkpoints kept per run; older ones are deleted after each save
SUFFIX = ".safetensors"


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def write_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save atomically (temporary name, fsync, rename) and delete all but the newest `KEEP_NEWEST`.

    `metadata` must hold `counters` with `images_seen`; each value is stored as a JSON string.
    The name carries images seen for people browsing the folder; code reads the metadata instead.
    """
    folder = checkpoints_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"images-{metadata['counters']['images_seen']:012d}{SUFFIX}"
    temporary = path.with_name(path.name + ".tmp")
    cpu_tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    header = {"format": CHECKPOINT_FORMAT, "version": str(CHECKPOINT_VERSION)}
    header.update({name: json.dumps(value) for name, value in metadata.items()})
    save_file(cpu_tensors, str(temporary), metadata=header)
    _fsync(temporary)
    os.replace(temporary, path)
    for _, old in list_checkpoints(run_dir)[:-KEEP_NEWEST]:
        old.unlink()
    return path


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(images_seen, path) of every complete checkpoint in the run, oldest first."""
    folder = checkpoints_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(read_metadata(path)["counters"]["images_seen"], path) for path in folder.glob(f"*{SUFFIX}")]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1][1] if checkpoints else None


def remove_temporary_files(run_dir: Path) -> None:
    """Half-written checkpoints left by a killed process."""
    for leftover in checkpoints_dir(run_dir).glob(f"*{SUFFIX}.tmp"):
        leftover.unlink()


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as reader:
            header = reader.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error}); delete it to use an earlier one") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"{path}: not a vjgan checkpoint")
    return {name: json.loads(value) for name, value in header.items() if name not in ("format", "version")}


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint; tensors are placed on `device`."""
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (OSError, SafetensorError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error}); delete it to use an earlier one") from None
    return tensors, metadata


def checkpoint_config(metadata: dict[str, Any], path: Path) -> TrainConfig:
    return config_from_dict(metadata["config"], path)


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": tensor for name, tensor in module.state_dict().items()}


def load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Load the `prefix.`-named tensors into `module`; a mismatch means the checkpoint is of another model."""
    start = prefix + "."
    state = {name[len(start):]: tensor for name, tensor in tensors.items() if name.startswith(start)}
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
            index, key = name[len(start):].split(".", 1)
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
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise RunError(f"{run_dir}: the run has no checkpoints yet; train it first (vjgan train ... --run {run_dir})")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise RunError(f"{checkpoint}: no such checkpoint")
    tensors, metadata = read_checkpoint(checkpoint, device)
    config = checkpoint_config(metadata, checkpoint)
    generator = Generator(config.model).to(device)
    load_module(generator, tensors, "G_ema", checkpoint)
    return generator.eval().requires_grad_(False), config


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
