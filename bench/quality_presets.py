"""Presets side by side at equal wall-clock time or equal images: SWD per level, diversity, the real floor.

    OMP_NUM_THREADS=1 .venv/bin/python bench/quality_presets.py --genres geometry --minutes 3   # a screen
    .venv/bin/python bench/quality_presets.py --genres geometry,organic,particles,typo --sizes 64,96 \\
        --minutes 8 --images 100000 --seeds 0,1,2 --threads 2                                   # issue 15 in full

A variant is a preset name, or `name=preset:field=value;field=value` with `with_overrides` names
(`w32=modern:model_width=32;lr=0.0004`), several after `--variants` separated by spaces: one run per
variant, genre, size, seed and schedule. The preset is resolved for each size as `vjgan train` does (a
preset's small-frame settings below 96 px: train/config.py), the overrides go on top.
`--minutes` trains each run for that wall-clock budget,
`--images` for that many images; given both, every run is done under each. Each run's final EMA
generator draws `--samples` fresh frames, scored against as many store frames by SWD x 1e3
(Laplacian pyramid, finest level first; lower is better) and by diversity. The floor row is the same
SWD between two disjoint halves of the store: what a perfect model would score. One contact sheet per
size (`--sheet-dir`, bench/ by default): per genre, a row of real frames, then a row of each variant's
samples (first seed, first schedule). Rows go to `--work-dir`/rows.jsonl as they finish, the markdown
table to stdout.

`--images-of modern` adds the equal-images comparison at the cost of the cheap runs only: every other
variant also trains for as many images as `modern`'s time-budget run of the same genre, size and seed saw.
After the table, every variant against the first one: the ratio of the seed means of SWD, and the ratio of
their excess over the floor (what the issue's target reads where the baseline is already near the floor).
rows.jsonl doubles as a cache, so the full measurement can be spread over several invocations: a run
whose row (same variant text, genre, size, schedule, seed) and run folder are there is scored again
from its folder instead of trained again (delete its row to train it afresh).
"""

import argparse
import ast
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from quality import generate  # bench/quality.py, beside this script: the final EMA generator's samples

from vjgan.evaluate import EvalConfig, SwdReference, diversity
from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.store import FrameStore
from vjgan.overrides import with_overrides
from vjgan.train.config import TrainConfig, preset
from vjgan.train.loop import train

SHEET_COLUMNS = 8  # frames per contact-sheet row
FLOOR = "real halves (floor)"  # the table's name for the store-against-store row
UNLIMITED_IMAGES = 10**12  # images_total of a run bounded by its minutes


@dataclass(frozen=True)
class Variant:
    name: str
    text: str  # as given on the command line: what a cached row must match
    preset_name: str
    overrides: dict  # `with_overrides` names -> values

    def config(self, size_px: int) -> TrainConfig:
        """The preset as `vjgan train` resolves it for frames of this size, with the variant's overrides
        (store, size and schedule are set per run)."""
        return with_overrides(preset(self.preset_name, (size_px, size_px)), **self.overrides)


def parse_variant(text: str) -> Variant:
    """ "modern" or "w32=modern:model_width=32;lr=0.0004" -> Variant (values read as Python literals, else text)."""
    name, _, spec = text.partition("=")
    preset_name, _, assignments = (spec or name).partition(":")
    overrides = {}
    for assignment in filter(None, assignments.split(";")):
        field, _, value = assignment.partition("=")
        try:
            overrides[field.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[field.strip()] = value.strip()
    variant = Variant(name, text, preset_name, overrides)
    variant.config(96)  # an unknown preset or setting fails here, before any run
    return variant


def real_floor(store: FrameStore, samples: int, seed: int) -> tuple[np.ndarray, dict]:
    """A reference sample of the store, and the SWD / diversity of a disjoint other half against it."""
    frames = store.all_frames()
    order = np.random.default_rng(seed).permutation(len(frames))
    half = min(samples, len(frames) // 2)
    reference, other = frames[order[:half]], frames[order[half : 2 * half]]
    swd = SwdReference(reference, EvalConfig(seed=seed)).distance(other)
    return reference, {"swd": swd, "diversity": diversity(other), "store_diversity": diversity(reference)}


def minutes_label(minutes: float) -> str:
    return f"{minutes:g} min"


def schedules(args, variant: Variant, done: list[dict], genre: str, size: int, seed: int) -> list[tuple[str, dict]]:
    """("8 min", overrides), ("100000 img", overrides) and/or ("images of modern", overrides): the run's
    budgets in `with_overrides` names. The last is the images `--images-of`'s variant saw in its time run."""
    out = []
    if args.minutes:
        out.append((minutes_label(args.minutes), {"minutes": args.minutes, "images_total": UNLIMITED_IMAGES}))
    if args.images:
        out.append((f"{args.images} img", {"images_total": args.images}))
    if args.images_of and variant.name != args.images_of:
        key = {"variant": args.images_of, "genre": genre, "size_px": size, "schedule": minutes_label(args.minutes), "seed": seed}
        matches = rows_matching(done, key)
        if not matches:
            raise SystemExit(f"--images-of {args.images_of}: no time-budget row for {genre} {size} px seed {seed} yet")
        out.append((f"images of {args.images_of}", {"images_total": matches[-1]["images_seen"]}))
    return out


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def rows_matching(rows: list[dict], key: dict) -> list[dict]:
    return [row for row in rows if all(row.get(name) == value for name, value in key.items())]


def sheet_image(rows: list[tuple[str, np.ndarray]]) -> Image.Image:
    """(label, (n, h, w, 3) uint8 frames) rows, SHEET_COLUMNS frames each, stacked top to bottom. The picture
    carries no text (that would need a font file); `main` prints the labels in row order."""
    height, width = rows[0][1].shape[1:3]
    sheet = np.zeros((len(rows) * (height + 2), SHEET_COLUMNS * (width + 2), 3), np.uint8)
    for r, (_, frames) in enumerate(rows):
        for c, frame in enumerate(frames[:SHEET_COLUMNS]):
            y, x = r * (height + 2) + 1, c * (width + 2) + 1
            sheet[y : y + height, x : x + width] = frame
    return Image.fromarray(sheet)


def markdown_row(cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def ratio_lines(table: list[tuple], baseline: str, time_label: str | None) -> list[str]:
    """Markdown rows of every variant against `baseline`, per genre, size and schedule: SWD per
    seed, their mean, the ratio of the means and the ratio of their excess over the floor (the part a model
    can still remove: no model scores below two halves of the store). An "images of" schedule is compared
    with the baseline's time-budget runs, the ones whose images it matched."""
    floors = {(row[1], row[2]): row[6].mean_x1e3 for row in table if row[0] == FLOOR}
    runs = [row for row in table if row[0] != FLOOR]
    swds = {}  # (genre, size, schedule) -> variant -> seed -> SWD x1e3
    for name, genre, size, label, seed, _, swd, *_ in runs:
        swds.setdefault((genre, size, label), {}).setdefault(name, {})[seed] = swd.mean_x1e3
    lines = []
    for (genre, size, label), variants in swds.items():
        base = swds.get((genre, size, time_label if label.startswith("images of") else label), {}).get(baseline, {})
        floor = floors[(genre, size)]
        for name, per_seed in variants.items():
            seeds = sorted(per_seed)
            mean = float(np.mean([per_seed[seed] for seed in seeds]))
            cells = [genre, size, label, name, " / ".join(f"{per_seed[seed]:.1f}" for seed in seeds), f"{mean:.1f}"]
            if name != baseline and all(seed in base for seed in seeds):
                base_mean = float(np.mean([base[seed] for seed in seeds]))
                cells += [f"{mean / base_mean:.2f}", f"{(mean - floor) / (base_mean - floor):.2f}"]
            else:
                cells += ["-", "-"]
            lines.append(markdown_row(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", type=Path, default=Path("../shared/footage"))
    parser.add_argument("--genres", default="geometry,organic,particles,typo")
    parser.add_argument("--variants", nargs="+", default=["modern", "modern2"], help="variants, space-separated (see above)")
    parser.add_argument("--sizes", default="64", help="comma list of frame sizes in pixels")
    parser.add_argument("--minutes", type=float, help="wall-clock budget of each run")
    parser.add_argument("--images", type=int, help="image budget of each run")
    parser.add_argument(
        "--images-of", metavar="VARIANT", help="also train every other variant for the images VARIANT saw in --minutes"
    )
    parser.add_argument("--seeds", default="0", help="comma list of run seeds")
    parser.add_argument("--samples", type=int, default=512, help="generated and store frames compared")
    parser.add_argument(
        "--snapshot-every", type=int, default=UNLIMITED_IMAGES, help="images between snapshots (for `vjgan eval`'s plateau)"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/_work/quality_presets"))
    parser.add_argument("--sheet-dir", type=Path, default=Path("bench"))
    args = parser.parse_args()
    if not (args.minutes or args.images):
        parser.error("give --minutes, --images or both")
    if args.images_of and not args.minutes:
        parser.error("--images-of needs --minutes (the time run whose images it matches)")
    torch.set_num_threads(args.threads)
    variants = [parse_variant(text) for text in args.variants]
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.sheet_dir.mkdir(parents=True, exist_ok=True)
    rows_path = args.work_dir / "rows.jsonl"
    done = read_rows(rows_path)

    table = []
    for size in (int(s) for s in args.sizes.split(",")):
        sheet_rows = []
        for genre in args.genres.split(","):
            data_dir = args.work_dir / f"data-{size}"
            ingest(args.footage / genre, data_dir, IngestConfig(size_px=size), genre=genre)
            store = FrameStore.open(data_dir / genre)
            reference, floor = real_floor(store, args.samples, seeds[0])
            swd_ref = SwdReference(reference, EvalConfig(seed=seeds[0]))
            table.append((FLOOR, genre, size, "-", "-", "-", floor["swd"], floor["diversity"], floor["store_diversity"]))
            sheet_rows.append((f"{genre} real", reference))
            # The variant whose images `--images-of` matches trains first; the first given stays the baseline.
            for variant in sorted(variants, key=lambda v: v.name != args.images_of):
                for seed in seeds:
                    for number, (label, budget) in enumerate(schedules(args, variant, done, genre, size, seed)):
                        run_dir = args.work_dir / f"{genre}-{size}-{variant.name}-{label.replace(' ', '')}-s{seed}"
                        key = {"spec": variant.text, "genre": genre, "size_px": size, "schedule": label, "seed": seed}
                        cached = rows_matching(done, key)
                        if cached and run_dir.exists():
                            images_seen = cached[-1]["images_seen"]
                        else:
                            config = with_overrides(
                                variant.config(size),
                                store=str(data_dir / genre),
                                model_size_px=(size, size),
                                snapshot_every_images=args.snapshot_every,
                                checkpoint_every_images=UNLIMITED_IMAGES,
                                device=args.device,
                                seed=seed,
                                **budget,
                            )
                            images_seen = train(config, run_dir, force=True).images_seen
                        fake = generate(run_dir, args.samples, seed)
                        swd = swd_ref.distance(fake)
                        row = (
                            variant.name,
                            genre,
                            size,
                            label,
                            seed,
                            images_seen,
                            swd,
                            diversity(fake),
                            floor["store_diversity"],
                        )
                        table.append(row)
                        record = {
                            "variant": variant.name,
                            **key,
                            "images_seen": images_seen,
                            "swd_x1e3": round(swd.mean_x1e3, 1),
                            "swd_per_level_x1e3": [round(v, 1) for v in swd.per_level_x1e3],
                            "diversity": round(row[7], 4),
                            "store_diversity": round(row[8], 4),
                        }
                        if not cached:
                            done.append(record)
                            with rows_path.open("a") as out:
                                out.write(json.dumps(record) + "\n")
                        print(json.dumps(record), flush=True)
                        if seed == seeds[0] and number == 0:
                            sheet_rows.append((f"{genre} {variant.name}", fake))
        sheet = args.sheet_dir / f"quality_presets_{size}px.png"
        sheet_image(sheet_rows).save(sheet)
        print(f"contact sheet {sheet}: rows top to bottom: {', '.join(label for label, _ in sheet_rows)}")

    print("| variant | genre | size | schedule | seed | images | SWD x1e3 | per level (fine ... coarse) | diversity (store) |")
    print("|---|---|---|---|---|---:|---:|---|---|")
    for name, genre, size, label, seed, images, swd, div, store_div in table:
        levels = " / ".join(f"{v:.1f}" for v in swd.per_level_x1e3)
        cells = [name, genre, size, label, seed, images, f"{swd.mean_x1e3:.1f}", levels, f"{div:.3f} ({store_div:.3f})"]
        print(markdown_row(cells))
    print(f"\nAgainst {variants[0].name}: SWD x1e3 per seed, their mean, the ratio of the means and of the excess over the floor")
    print("| genre | size | schedule | variant | SWD per seed | mean | ratio | excess ratio |")
    print("|---|---|---|---|---|---:|---:|---:|")
    print("\n".join(ratio_lines(table, variants[0].name, minutes_label(args.minutes) if args.minutes else None)))


if __name__ == "__main__":
    main()
