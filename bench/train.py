"""Training speed in images/s: the real training step (sample, D step, G step, EMA) on random frames.

    .venv/bin/python bench/train.py --preset seed96 --batch-size 100 --precision bf16
    .venv/bin/python bench/train.py --all   # the figures bench/RESULTS.md reports
    python3 bench/train.py --all --device cuda --steps 200 --warmup-steps 20   # on a GPU: adds --cuda-graph
                                                                             # and --compile rows
    python3 bench/train.py --verify-graph    # on a GPU: a replayed graph trains as the eager step does

The frames are random uint8 on the device, so no store is needed and the data path is the one
training uses. The first steps (warm-up: oneDNN kernel selection, torch.compile, CUDA graph capture)
are not timed. A log-time host sync ends the timed span, as in training.
"""

import argparse
import dataclasses
import time
import traceback

import torch

from vjgan.device import pick_device
from vjgan.train.config import preset
from vjgan.train.step import GRAPH_WARMUP_STEPS, step_on_random_frames

BENCH_FRAMES = 2000  # random frames the batches are drawn from


def bench_config(
    preset_name: str,
    batch_size: int | None,
    precision: str,
    device: str,
    compile: bool,
    cuda_graph: bool,
    size_px: int | None = None,
    width: int | None = None,
):
    config = preset(preset_name, (size_px, size_px) if size_px else None)  # as `vjgan train` resolves it
    config = dataclasses.replace(
        config,
        batch_size=batch_size or config.batch_size,
        precision=precision,
        device=device,
        compile=compile,
        cuda_graph=cuda_graph,
    )
    model_changes = {"size_px": (size_px, size_px) if size_px else None, "width": width}
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, **{name: value for name, value in model_changes.items() if value is not None}),
    )


def images_per_second(config, steps: int, warmup_steps: int) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second of this process).

    On a shared machine the second figure is the steadier one: it counts only the cycles this process
    got, so (times the thread count) it estimates what a quiet machine would do if threads scale.
    """
    step = step_on_random_frames(config, BENCH_FRAMES)
    loss_sums = torch.zeros(2, device=step.world.device)

    def run(n_steps: int) -> None:
        for _ in range(n_steps):
            loss_sums.add_(step(images_seen=10**6))
        loss_sums.tolist()  # the host waits for the device once, as at a log step

    run(max(warmup_steps, GRAPH_WARMUP_STEPS + 2) if step.graphed else warmup_steps)  # capture is never timed
    start, start_cpu = time.perf_counter(), time.process_time()
    run(steps)
    images = steps * config.batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - start_cpu)


def verify_graph(config, steps: int) -> None:
    """Train `steps` steps eagerly and as a replayed CUDA graph from the same seed; print how far apart
    the losses and weights end up. cuDNN's autotuned kernels are not bitwise reproducible, so the two
    drift apart slowly; a broken graph (stale random numbers, a frozen EMA decay) shows at once."""
    runs = {}
    for graphed in (False, True):
        step = step_on_random_frames(dataclasses.replace(config, cuda_graph=graphed), BENCH_FRAMES)
        losses = torch.stack([step(images_seen=index * config.batch_size).clone() for index in range(steps)])
        weights = (*step.nets.G_ema.parameters(), *step.nets.D.parameters())
        runs[graphed] = (losses.cpu(), [p.detach().float().cpu() for p in weights])
    (eager_losses, eager_weights), (graph_losses, graph_weights) = runs[False], runs[True]
    loss_gap = (eager_losses - graph_losses).abs().max().item()
    weight_gap = max(((a - b).norm() / a.norm().clamp_min(1e-12)).item() for a, b in zip(eager_weights, graph_weights))
    first_steps_gap = (eager_losses[:5] - graph_losses[:5]).abs().max().item()
    print(
        f"verify graph: {steps} steps; max |loss difference| first 5 steps {first_steps_gap:.2e}, all {loss_gap:.2e}; "
        f"largest relative weight difference {weight_gap:.2e}; eager final losses {eager_losses[-1].tolist()}, "
        f"graph {graph_losses[-1].tolist()}"
    )
    distinct_batches = len({tuple(row.tolist()) for row in graph_losses})
    print(f"verify graph: {distinct_batches} distinct loss pairs in {steps} graph steps (fewer means the random streams froze)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="seed96")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cuda-graph", action="store_true", help="replay the step as one CUDA graph")
    parser.add_argument("--verify-graph", action="store_true", help="compare eager and graph training (CUDA)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--size", type=int, help="square model size in pixels (default: the preset's)")
    parser.add_argument("--width", type=int, help="model width (default: the preset's)")
    parser.add_argument(
        "--all",
        action="store_true",
        help="seed96 at batch 100 in fp32 and bf16, and modern; on CUDA also with --cuda-graph and --compile",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = pick_device(args.device).type == "cuda"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, capability {torch.backends.cpu.get_cpu_capability()}"
        + (f", {torch.cuda.get_device_name()}" if on_cuda else "")
    )
    if args.verify_graph:
        verify_graph(
            bench_config(args.preset, args.batch_size, args.precision, args.device, False, True, args.size, args.width),
            max(args.steps, 50),
        )
        return
    cases = [(args.preset, args.batch_size, args.precision, args.compile, args.cuda_graph)]
    if args.all:
        cases = [
            (name, batch, precision, False, False)
            for name, batch in (("seed96", 100), ("modern", None))
            for precision in ("fp32", "bf16")
        ]
        if on_cuda:
            cases += [
                (name, batch, "bf16", compile, True)
                for name, batch in (("seed96", 100), ("modern", None))
                for compile in (False, True)
            ]
    for name, batch_size, precision, compile, cuda_graph in cases:
        config = bench_config(name, batch_size, precision, args.device, compile, cuda_graph, args.size, args.width)
        label = f"{name:8s} batch {config.batch_size:4d} {precision:5s}" + " compile" * compile + " cuda-graph" * cuda_graph
        try:
            rate, cpu_rate = images_per_second(config, args.steps, args.warmup_steps)
        except Exception:  # one failing variant (a compiler missing, a capture refused) must not end the bench
            print(f"{label}: failed\n{traceback.format_exc()}")
            continue
        print(f"{label} {rate:9.1f} images/s {cpu_rate:9.1f} images/CPU-s")


if __name__ == "__main__":
    main()
