"""Curating footage-made training data: `ingest --dedup` and `train --balance sources`, same budget.

    OMP_NUM_THREADS=1 .venv/bin/python bench/curation.py    # ~6 minutes on one CPU core
    .venv/bin/python bench/curation.py --images 128000 --seeds 0,1,2 --dedup 0.003

Makes an unbalanced genre out of ../shared/footage, as a VJ's folder often is: one long clip (LONG
played at quarter speed: 720 frames at 30 fps, each picture held four frames, as slowed-down footage
is) and three 2-second clips cut from other genres (60 frames each), so 80% of the frames are one
clip. It is ingested twice at 32 px, as is and with `--dedup`, and the `modern` preset (width 16, as
bench/quality.py) is trained on the same number of images with each of: no curation; dedup;
balance over sources; both. Each final EMA generator's samples are scored against the footage as a
viewer weighs it, every clip alike (reference frames drawn equally from the four sources of the
undeduplicated store):
- SWD x 1e3 (lower is better) against that source-balanced reference, and against frames drawn
  uniformly (where the long clip is 80%), for comparison;
- diversity (mean pairwise RMS distance, evaluate.diversity); the store's own is in the line above the table.
(Which source each sample resembles was tried too, by nearest store frame at 32, 8 and 4 px, and
dropped: blurry samples land on the dark clips, which also confuse each other, whatever the scale.)
Everything is written under --work-dir; the table printed at the end is what bench/RESULTS.md quotes.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from quality import generate  # bench/quality.py, next to this script

from vjgan.evaluate import EvalConfig, SwdReference, diversity
from vjgan.footage.decode import iter_frames
from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.store import FrameStore
from vjgan.overrides import with_overrides
from vjgan.render.video import WriterOptions, open_writer
from vjgan.train.config import preset
from vjgan.train.loop import train

LONG = ("geometry/rotzoomer.mp4", 4)  # (clip, slow-down factor)
SHORTS = ("particles/flurry.mp4", "typo/gltext.mp4", "organic/lavalite.mp4")
SHORT_FRAMES = 60  # 2 seconds at 30 fps
FOOTAGE_FPS = 30
SIZE_PX = 32
GENRE = "mix"
VARIANTS = {  # name: (dedup the store, balance)
    "none": (False, "frames"),
    "dedup": (True, "frames"),
    "balance sources": (False, "sources"),
    "dedup + balance": (True, "sources"),
}


def make_footage(footage: Path, folder: Path) -> list[str]:
    """The unbalanced genre folder (re-encoded H.264 at the sources' 640x360); its file names, long first."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for clip, slowdown, keep in [(LONG[0], LONG[1], None), *((short, 1, SHORT_FRAMES) for short in SHORTS)]:
        source = footage / clip
        frames = np.stack([frame.copy() for frame in iter_frames(source, None, (360, 640), "full")][:keep])  # (n, 360, 640, 3)
        name = f"{len(names) + 1}-{source.stem}.mp4"  # sorted as listed: the long clip is source 0
        target = folder / name
        if not target.exists():
            with open_writer(target, WriterOptions(FOOTAGE_FPS / slowdown, (640, 360))) as writer:
                writer.write(frames)
        names.append(name)
    return names


def source_balanced(store: FrameStore, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` frames (count, H, W, 3), an equal share drawn from each source."""
    sources = store.frame_sources()
    per_source = [rng.choice(np.flatnonzero(sources == s), count // len(store.shards)) for s in range(len(store.shards))]
    return store.frames_at(np.concatenate(per_source))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", type=Path, default=Path("../shared/footage"))
    parser.add_argument("--dedup", type=float, default=0.01, help="ingest --dedup threshold of the curated store")
    parser.add_argument("--images", type=int, default=64_000, help="training images per run")
    parser.add_argument("--seeds", default="0,1", help="comma list of training seeds (each variant trains once per seed)")
    parser.add_argument("--samples", type=int, default=512, help="generated and reference frames compared")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/_work/curation"))
    args = parser.parse_args()

    names = make_footage(args.footage, args.work_dir / "footage" / GENRE)
    stores = {}
    for dedup in (False, True):
        data_dir = args.work_dir / (f"data-dedup-{args.dedup:g}" if dedup else "data")
        ingest(
            args.work_dir / "footage" / GENRE,
            data_dir,
            IngestConfig(size_px=SIZE_PX, dedup=args.dedup if dedup else 0.0),
            genre=GENRE,
        )
        stores[dedup] = FrameStore.open(data_dir / GENRE)
    full = stores[False]
    kept = {
        dedup: [f"{shard.frames}/{shard.frames_decoded or shard.frames}" for shard in store.shards]
        for dedup, store in stores.items()
    }
    rng = np.random.default_rng(0)
    balanced_real, uniform_real = source_balanced(full, args.samples, rng), full.sample(args.samples, rng)
    swd_balanced, swd_uniform = SwdReference(balanced_real, EvalConfig(seed=0)), SwdReference(uniform_real, EvalConfig(seed=0))

    results = []
    for name, (dedup, balance) in VARIANTS.items():
        for seed in map(int, args.seeds.split(",")):
            config = with_overrides(
                preset("modern"),
                store=str(stores[dedup].path),
                balance=balance,
                images_total=args.images,
                snapshot_every_images=args.images,
                checkpoint_every_images=args.images,
                model_size_px=(SIZE_PX, SIZE_PX),
                model_width=16,
                device=args.device,
                seed=seed,
            )
            run_dir = args.work_dir / "runs" / f"{name.replace(' ', '').replace('+', '-')}-seed{seed}-{args.images}"
            train(config, run_dir, force=True)
            fake = generate(run_dir, args.samples, seed)
            results.append(
                {
                    "variant": name,
                    "seed": seed,
                    "frames": len(stores[dedup]),
                    "kept_per_source": kept[dedup],
                    "swd_balanced_x1e3": round(swd_balanced.distance(fake).mean_x1e3, 1),
                    "swd_uniform_x1e3": round(swd_uniform.distance(fake).mean_x1e3, 1),
                    "diversity": round(diversity(fake), 4),
                }
            )
            print(json.dumps(results[-1]))
    (args.work_dir / "curation.json").write_text(json.dumps(results, indent=1))

    print("\n".join(table(results, names, args, diversity(balanced_real), diversity(uniform_real))))


def table(results: list[dict], names: list[str], args, balanced_diversity: float, uniform_diversity: float) -> list[str]:
    seeds = args.seeds.split(",")
    lines = [
        f"`OMP_NUM_THREADS=1 .venv/bin/python bench/curation.py --images {args.images} --seeds {args.seeds} "
        f"--dedup {args.dedup:g}` (bench/curation.py says how the genre is made and scored): sources "
        f"{', '.join(names)}; `modern` at {SIZE_PX} px, width 16, {args.images:,} images per run, "
        f"seed{'s' if len(seeds) > 1 else ''} {' and '.join(seeds)} (figures: mean, per-seed values in brackets), "
        f"{args.samples} samples of the final EMA generator. Store diversity: {balanced_diversity:.3f} source-balanced, "
        f"{uniform_diversity:.3f} uniform over frames.",
        "",
        "| variant | frames (kept / decoded per source) | SWD x1e3 vs sources alike | SWD x1e3 vs frames alike | diversity |",
        "|---|---|---:|---:|---:|",
    ]
    for name in VARIANTS:
        rows = [r for r in results if r["variant"] == name]

        def cell(key, digits):
            values = [r[key] for r in rows]
            spread = f" ({' / '.join(f'{v:.{digits}f}' for v in values)})" if len(values) > 1 else ""
            return f"{np.mean(values):.{digits}f}{spread}"

        lines.append(
            f"| {name} | {rows[0]['frames']:,} ({', '.join(rows[0]['kept_per_source'])}) | {cell('swd_balanced_x1e3', 1)} | "
            f"{cell('swd_uniform_x1e3', 1)} | {cell('diversity', 3)} |"
        )
    return lines


if __name__ == "__main__":
    main()
