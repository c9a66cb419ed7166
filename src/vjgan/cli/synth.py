"""`vjgan synth OUT_DIR`: write procedural VJ footage (particles, geometry, typo) as genre folders of mp4 clips."""

import time
from pathlib import Path

from vjgan.cli.options import from_flags
from vjgan.console import console
from vjgan.footage.synth import GENRES, SynthConfig, write_synth_footage
from vjgan.sizes import parse_frame_size_wh


def register(parser) -> None:
    parser.description = (
        "Write procedural VJ-style clips as H.264 mp4 files into OUT_DIR/<genre>/: glowing particle "
        "swarms, geometric tunnels and kinetic typography. Every clip loops seamlessly; the same seed gives the "
        "same frames."
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write the genre folders into")
    parser.add_argument("--seconds", type=float, help=f"length of each clip (default {SynthConfig.seconds})")
    parser.add_argument(
        "--size",
        dest="frame_size_wh",
        type=parse_frame_size_wh,
        metavar="WxH",
        help="frame size in pixels (default {}x{})".format(*SynthConfig.frame_size_wh),
    )
    parser.add_argument("--fps", type=int, help=f"frames per second (default {SynthConfig.fps})")
    parser.add_argument("--seed", type=int, help=f"picks styles, palettes, motion and words (default {SynthConfig.seed})")
    parser.add_argument(
        "--clips", dest="clips_per_genre", type=int, help=f"clips per genre (default {SynthConfig.clips_per_genre})"
    )
    parser.add_argument(
        "--genre", action="append", choices=GENRES, dest="genres", help="write only this genre (repeatable; default all)"
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_flags(SynthConfig(), args, genres=tuple(dict.fromkeys(args.genres)) if args.genres else None)
    started = time.perf_counter()
    paths = write_synth_footage(args.out_dir, config)
    seconds = time.perf_counter() - started
    width, height = config.frame_size_wh
    console.print(
        f"wrote {len(paths)} clips ({len(config.genres)} genres x {config.clips_per_genre}, "
        f"{config.n_frames} frames of {width}x{height} each) to {args.out_dir} in {seconds:.1f} s",
        markup=False,
    )
    console.print(f"next: vjgan ingest {args.out_dir} --out DATA_DIR", markup=False)
    return 0
