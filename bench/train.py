"""Training speed in images/s: the real training step (sample, D step, G step, EMA) on random frames.

    .venv/bin/python bench/train.py --preset seed96 --batch-size 100 --precision bf16
    .venv/bin/python bench/train.py --all   # the figures bench/RESULTS.md reports

The frames are random uint8 on the device, so no store is needed and the data path is the one
training uses. The first steps (warm-up: oneDNN kernel selection, torch.compile) are not timed.
A log-time host sync ends the timed span, as in training.
"""

import argparse
import dataclasses
import time

import torch

from vjgan.train.config import preset
from vjgan.train.distributed import World
from vjgan.train.hardware import autocast_dtype, pick_device
from vjgan.train.loop import build_networks, make_streams, train_step


def images_per_second(preset_name: str, batch_size: int | None, precision: str, device: str, compile: bool,
                      steps: int, warmup_steps: int, size_px: int | None = None, width: int | None = None) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second of this process).

    On a shared machine the second figure is the steadier one: it counts only the cycles this process
    got, so (times the thread count) it estimates what a quiet machine would do if threads scale.
    """
    config = preset(preset_name)
    config = dataclasses.replace(config, batch_size=batch_size or config.batch_size, precision=precision,
                                 device=device, compile=compile)
    model_changes = {"size_px": (size_px, size_px) if size_px else None, "width": width}
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, **{name: value for name, value in model_changes.items() if value is not None}))
    world = World(rank=0, size=1, device=pick_device(config.device))
    frames = torch.randint(0, 256, (2000, *config.model.size_px, 3), dtype=torch.uint8).to(world.device)
    nets = build_networks(config, world)
    streams = make_streams(config.seed, world)
    amp_dtype = autocast_dtype(config.precision, world.device)
    loss_sums = torch.zeros(2, device=world.device)

    def run(n_steps: int) -> None:
        for _ in range(n_steps):
            loss_sums.add_(train_step(nets, frames, config.batch_size, config, streams, world, amp_dtype, images_seen=10**6))
        loss_sums.tolist()  # the host waits for the device once, as at a log step

    run(warmup_steps)
    start, start_cpu = time.perf_counter(), time.process_time()
    run(steps)
    images = steps * config.batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - start_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="seed96")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--size", type=int, help="square model size in pixels (default: the preset's)")
    parser.add_argument("--width", type=int, help="model width (default: the preset's)")
    parser.add_argument("--all", action="store_true", help="seed96 at batch 100 in fp32 and bf16, and modern")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [(args.preset, args.batch_size, args.precision)]
    if args.all:
        cases = [("seed96", 100, "fp32"), ("seed96", 100, "bf16"), ("modern", None, "fp32"), ("modern", None, "bf16")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, capability {torch.backends.cpu.get_cpu_capability()}")
    for name, batch_size, precision in cases:
        rate, cpu_rate = images_per_second(name, batch_size, precision, args.device, args.compile, args.steps, args.warmup_steps,
                                           args.size, args.width)
        print(f"{name:8s} batch {batch_size or preset(name).batch_size:4d} {precision:5s} {rate:8.1f} images/s"
              f" {cpu_rate:8.1f} images/CPU-s")


if __name__ == "__main__":
    main()
