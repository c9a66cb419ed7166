"""Image quality per preset: SWD and diversity after the same number of training images.

    .venv/bin/python bench/quality.py --footage ../shared/footage --genre organic --images 200000
    .venv/bin/python bench/quality.py --genre organic --size 32 --width 16 --images 64000  # CPU-sized

Ingests one genre folder of the footage (`FOOTAGE/<genre>/`) into a frame store, trains each preset
on it with the trainer's own API (`vjgan.train.loop.train`) for the same number of images, then
measures the EMA generator of the final checkpoint: SWD x 1e3 of `--samples` fresh samples against
as many store frames (lower is better) and diversity (mean pairwise distance; the store's own figure
is printed beside it). The per-snapshot curves of every preset go into one chart. Everything is
written under `--work-dir`; the table printed at the end is what bench/RESULTS.md quotes.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vjgan.evaluate import EvalConfig, SwdReference, diversity, evaluate_run
from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.store import FrameStore
from vjgan.model.networks import sample_latents, to_uint8
from vjgan.overrides import with_overrides
from vjgan.plot import line_chart_png
from vjgan.run.checkpoint import load_generator
from vjgan.train.config import preset
from vjgan.train.loop import train

SAMPLE_BATCH = 128  # generator batch when drawing samples for the final measurement


def generate(run_dir: Path, count: int, seed: int) -> np.ndarray:
    """`count` frames (count, H, W, 3) uint8 from the run's newest EMA generator."""
    generator, config = load_generator(run_dir)
    latents = sample_latents(count, config.model.z_dim, config.model.latent, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return np.concatenate([to_uint8(generator(z)).numpy() for z in latents.split(SAMPLE_BATCH)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", type=Path, default=Path("../shared/footage"))
    parser.add_argument("--genre", default="organic")
    parser.add_argument("--presets", default="seed96,modern", help="comma list of presets to compare")
    parser.add_argument("--images", type=int, default=200_000, help="training images per preset")
    parser.add_argument("--size", type=int, help="frame size in pixels (default: each preset's)")
    parser.add_argument("--width", type=int, help="model channel multiplier (default: each preset's)")
    parser.add_argument("--samples", type=int, default=1024, help="generated and store frames compared at the end")
    parser.add_argument("--snapshots", type=int, default=10, help="snapshots (curve points) per run")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/_work/quality"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results, curves = [], {}
    for name in args.presets.split(","):
        base = preset(name)
        size_px = (args.size, args.size) if args.size else base.model.size_px
        data_dir = args.work_dir / f"data-{size_px[0]}x{size_px[1]}"
        ingest(args.footage / args.genre, data_dir, IngestConfig(size_px=size_px[0]), genre=args.genre)
        store_path = data_dir / args.genre
        config = with_overrides(
            base,
            store=str(store_path),
            images_total=args.images,
            snapshot_every_images=max(1, args.images // args.snapshots),
            checkpoint_every_images=args.images,
            model_size_px=size_px,
            model_width=args.width,
            device=args.device,
            seed=args.seed,
        )
        run_dir = args.work_dir / f"{args.genre}-{name}-{size_px[0]}px-{args.images}"
        outcome = train(config, run_dir, force=True)
        store = FrameStore.open(store_path)
        real = store.sample(args.samples, np.random.default_rng(args.seed))
        fake = generate(run_dir, args.samples, args.seed)
        swd = SwdReference(real, EvalConfig(seed=args.seed)).distance(fake)
        report = evaluate_run(run_dir, EvalConfig(seed=args.seed), store)
        curves[name] = ([row.images_seen for row in report.snapshots], [row.swd_x1e3 for row in report.snapshots])
        results.append(
            {
                "preset": name,
                "genre": args.genre,
                "size_px": list(size_px),
                "width": config.model.width,
                "images_seen": outcome.images_seen,
                "swd_x1e3": round(swd.mean_x1e3, 1),
                "swd_per_level_x1e3": [round(v, 1) for v in swd.per_level_x1e3],
                "diversity": round(diversity(fake), 4),
                "store_diversity": round(diversity(real), 4),
                "run_dir": str(run_dir),
            }
        )
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / f"quality-{args.genre}.json").write_text(json.dumps(results, indent=1))
    chart = line_chart_png(
        args.work_dir / f"quality-{args.genre}.png",
        curves,
        f"SWD of the fixed noise bank, {args.genre}",
        "images seen",
        "SWD x 1e3 (lower is better)",
        log_y=True,
    )
    print("| preset | genre | size | width | images | SWD x1e3 | per level | diversity (store) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        levels = " / ".join(f"{v:g}" for v in r["swd_per_level_x1e3"])
        print(
            f"| {r['preset']} | {r['genre']} | {r['size_px'][0]} | {r['width']} | {r['images_seen']:,} | "
            f"{r['swd_x1e3']} | {levels} | {r['diversity']} ({r['store_diversity']}) |"
        )
    print(f"curves: {chart}")


if __name__ == "__main__":
    main()
