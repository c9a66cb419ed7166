"""Device and number-format choices, made at run time (never at import: CPU users must always get in).

bf16 autocast roughly halves the work of every convolution where the hardware has bf16 arithmetic
(CUDA from Ampere on; CPUs with AVX-512 BF16 or AMX via oneDNN); elsewhere it is emulated and slower
than float32, so "auto" picks it only where it is native.
"""

import torch

from vjgan.errors import VjganError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this rank's CUDA device when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise VjganError("device cuda: no CUDA device is available here; use --device cpu")
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 runs use the tensor cores too
        torch.backends.cudnn.allow_tf32 = True
        return device
    return torch.device("cpu")


def bf16_is_native(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    cpu_checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in cpu_checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the networks' forward passes, or None for plain float32."""
    if precision == "fp32" or (precision == "auto" and not bf16_is_native(device)):
        return None
    return torch.bfloat16
