"""Device and number-format choices, made at run time (never at import: CPU users must always get in).

Training, rendering and the live mode pick their device and autocast dtype here, from the names their
configs hold (`DEVICES`, `PRECISIONS`). torch is imported only by the functions that need it, so the
CLI can offer these names as choices without paying torch's import.

bf16 autocast roughly halves the work of every convolution where the hardware has bf16 arithmetic
(CUDA from Ampere on; CPUs with AVX-512 BF16 or AMX via oneDNN); elsewhere it is emulated and slower
than float32, so "auto" picks it only where it is native.

Apple GPUs (MPS, macOS on Apple Silicon) run in float32: PyTorch's MPS bf16 depends on the macOS
version, so vjgan assumes none there ("auto" is fp32, an explicit bf16 is refused), and the CUDA-only
settings (cuDNN, TF32, fused Adam, CUDA graphs) stay on the CUDA path. Not verified on a Mac here.
"""

from typing import TYPE_CHECKING

from vjgan.errors import VjganError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # "auto": this rank's CUDA device, else Apple's GPU (MPS), else the CPU
PRECISIONS = ("auto", "fp32", "bf16")  # "auto": bf16 where the hardware runs it natively, else fp32


def pick_device(name: str, local_rank: int = 0) -> "torch.device":
    """ "auto" -> this rank's CUDA device when there is one, else Apple's GPU (MPS) when there is one, else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise VjganError("device mps: no Apple GPU (MPS) is available here; use --device cpu")
        return torch.device("mps")
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


def bf16_is_native(device: "torch.device") -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "mps":
        return False
    cpu_checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in cpu_checks)


def autocast_dtype(precision: str, device: "torch.device") -> "torch.dtype | None":
    """The autocast dtype for the networks' forward passes, or None for plain float32."""
    import torch

    if precision == "bf16" and device.type == "mps":
        raise VjganError("precision bf16: vjgan runs Apple GPUs (MPS) in float32; use --precision fp32 or auto")
    if precision == "fp32" or (precision == "auto" and not bf16_is_native(device)):
        return None
    return torch.bfloat16


def autocast(device: "torch.device", amp_dtype: "torch.dtype | None", cache_enabled: bool = True) -> "torch.autocast":
    """The networks' autocast context: `amp_dtype` (from `autocast_dtype`), or off where that is None, so
    float32 runs go through the same `with` as bf16 ones."""
    import torch

    return torch.autocast(
        device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None, cache_enabled=cache_enabled
    )
