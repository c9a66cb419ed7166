"""--device mps and the MPS number format: what runs here (a machine with no Apple GPU) for real."""

import pytest
import torch
from render_media import vjgan

from vjgan.device import DEVICES, autocast_dtype, bf16_is_native, pick_device
from vjgan.errors import VjganError

no_apple_gpu = pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has an Apple GPU")


def test_mps_is_a_device_choice_of_every_command():
    assert DEVICES == ("auto", "cpu", "cuda", "mps")


@no_apple_gpu
@pytest.mark.parametrize("command", ["train", "render"])
def test_device_mps_without_an_apple_gpu_is_refused_on_one_line(tiny_run, tmp_path, capsys, command):
    args = {
        "train": ["train", "--dry-run", "--size", "32", "--width", "4", "--batch-size", "4"],
        "render": ["render", "loop", tiny_run, "--seconds", "0.2", "--out", tmp_path / "clip.mp4"],
    }[command]
    code, err = vjgan(capsys, *args, "--device", "mps")
    assert code == 1 and err.strip() == "vjgan: error: device mps: no Apple GPU (MPS) is available here; use --device cpu"
    assert list(tmp_path.iterdir()) == []


@no_apple_gpu
@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks CUDA here")
def test_auto_is_the_cpu_without_cuda_or_mps():
    assert pick_device("auto") == torch.device("cpu")


def test_mps_runs_in_float32_and_refuses_bf16_on_one_line():
    mps = torch.device("mps")  # a device object needs no backend
    assert not bf16_is_native(mps)
    assert autocast_dtype("auto", mps) is None and autocast_dtype("fp32", mps) is None
    with pytest.raises(
        VjganError, match=r"^precision bf16: vjgan runs Apple GPUs \(MPS\) in float32; use --precision fp32 or auto$"
    ):
        autocast_dtype("bf16", mps)
