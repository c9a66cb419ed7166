"""`vjgan render progress|loop|walk|audio RUN`: VJ clips from a trained run."""

from collections.abc import Callable
from pathlib import Path

from vjgan.cli import print_error, print_line
from vjgan.cli.options import from_flags
from vjgan.console import console
from vjgan.device import DEVICES, PRECISIONS
from vjgan.errors import RenderError, VjganError
from vjgan.render import clips
from vjgan.render.effects import EFFECTS, MAX_INTENSITY, parse_effects
from vjgan.render.latent import EASINGS
from vjgan.render.layout import FILTERS, LAYOUTS
from vjgan.render.pipeline import MAX_TRUNCATION, RenderConfig
from vjgan.render.video import CODECS, FORMATS
from vjgan.sizes import parse_frame_size_wh

DEFAULTS = RenderConfig()


def register(parser) -> None:
    parser.description = (
        "Render a clip from a trained run into RUN/clips/ (or --out): H.264 mp4 by default, ProRes mov, "
        "GIF or a folder of PNG frames."
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    progress = add_kind(kinds, "progress", "the fixed-noise snapshots in training order, one per frame (the training video)")
    progress.add_argument("--frames-per-snapshot", type=int, metavar="K", help="show each snapshot for K frames (default 1)")
    progress.add_argument("--crossfade", action="store_true", default=None, help="blend between snapshots instead of holding")
    progress.add_argument(
        "--from", dest="from_images", type=int, metavar="IMAGES", help="start at the snapshot taken at this many images seen"
    )
    progress.add_argument(
        "--to", dest="to_images", type=int, metavar="IMAGES", help="end at the snapshot taken at this many images seen"
    )
    progress.set_defaults(run=run_progress)

    loop = add_kind(kinds, "loop", "a seamless loop through the generator's latent space", latent=True)
    loop.add_argument("--seconds", type=float, help=f"loop length (default {clips.LoopOptions.seconds:g})")
    add_beat_options(loop)
    loop.set_defaults(run=run_loop)

    walk = add_kind(kinds, "walk", "a walk through random latents (keyframes), slerped with easing", latent=True)
    walk.add_argument("--seconds", type=float, help=f"walk length (default {clips.WalkOptions.seconds:g})")
    walk.add_argument(
        "--keyframes", type=int, metavar="N", help=f"random latents to pass through (default {clips.WalkOptions.keyframes})"
    )
    walk.add_argument(
        "--easing", choices=sorted(EASINGS), help=f"slow-in/out between keyframes (default {clips.WalkOptions.easing})"
    )
    walk.add_argument("--loop", action="store_true", default=None, help="walk back to the first keyframe, so the clip loops")
    walk.set_defaults(run=run_walk)

    audio = add_kind(kinds, "audio", "motion and VJ effects driven by a music track, which is muxed in", latent=True)
    audio.add_argument("--audio", type=Path, required=True, metavar="TRACK", help="mp3, ogg, wav, flac, m4a, ...")
    audio.add_argument(
        "--effects",
        type=parse_effects,
        metavar="LIST",
        help=f"comma-separated from {', '.join(EFFECTS)}; 'all' or '' (none) (default {','.join(clips.AudioOptions.effects)})",
    )
    audio.add_argument(
        "--intensity", type=float, help=f"effect strength, 0 to {MAX_INTENSITY:g} (default {clips.AudioOptions.intensity:g})"
    )
    audio.set_defaults(run=run_audio)


def add_kind(kinds, name: str, help: str, latent: bool = False):
    parser = kinds.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    add_run_argument(parser)
    stem = f"{name}-SEED" if latent else name
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output file (.mp4, .mov, .gif) or PNG folder (default RUN/clips/{stem}.mp4; .mov for a --codec other than h264)",
    )
    add_output_options(parser, latent)
    return parser


def add_run_argument(parser) -> None:
    parser.add_argument(
        "run_dirs", type=Path, nargs="+", metavar="RUN", help="run directory made by vjgan train; several (runs/*) in turn"
    )


def each_run(args, render_one: Callable[[Path], object]) -> int:
    """`render_one(run_dir)` for every run given, in turn (`vjgan render loop runs/*`): a run that fails is one
    line and the others go on; the exit code is 1 when any failed."""
    if args.out is not None and len(args.run_dirs) > 1:
        raise RenderError(f"{args.out}: --out names one output; with several runs leave it out (each writes into RUN/clips/)")
    failed = 0
    for run_dir in args.run_dirs:
        try:
            render_one(run_dir)
        except VjganError as error:
            print_error(error)
            failed += 1
    if failed and len(args.run_dirs) > 1:
        print_line(f"vjgan: {failed} of {len(args.run_dirs)} runs failed", style="red")
    return 1 if failed else 0


def add_output_options(parser, latent: bool) -> None:
    """The options every render command and `generate` share: RenderConfig's fields."""
    look = parser.add_argument_group("picture")
    look.add_argument(
        "--size",
        dest="frame_size_wh",
        type=parse_frame_size_wh,
        metavar="WxH",
        help="output size (default {}x{})".format(*DEFAULTS.frame_size_wh),
    )
    look.add_argument("--fps", type=float, help=f"frames per second (default {DEFAULTS.fps:g})")
    default_layout = "single" if latent else "grid"
    look.add_argument(
        "--layout", choices=LAYOUTS, help=f"one sample, a RxC grid, or a wall filling the frame (default {default_layout})"
    )
    look.add_argument("--rows", type=int, help="grid rows (default: with --cols, the 9-16 samples that best fill the frame)")
    look.add_argument("--cols", type=int, help="grid columns (default: follows --rows and the frame's shape)")
    if not latent:
        look.add_argument(
            "--sample", type=int, metavar="K", help=f"noise-bank sample of the single layout (default {DEFAULTS.sample})"
        )
    look.add_argument("--filter", choices=FILTERS, help=f"upscaling filter; nearest = crisp pixels (default {DEFAULTS.filter})")
    if latent:
        look.add_argument("--seed", type=int, help=f"seed of the latent paths (default {DEFAULTS.seed})")
        look.add_argument(
            "--truncation",
            type=float,
            metavar="PSI",
            help="latent spread: below 1 tamer and cleaner, "
            f"above 1 wilder, 0 to {MAX_TRUNCATION:g} (default {DEFAULTS.truncation:g} = as trained)",
        )
        look.add_argument("--checkpoint", type=Path, help="checkpoint file to render (default: the run's newest)")
    output = parser.add_argument_group("output")
    codecs = "; ".join(f"{name}: {spec.about}" for name, spec in CODECS.items())
    output.add_argument("--codec", help=f"{codecs} (default h264; all but h264 write .mov)")
    output.add_argument(
        "--format", dest="fmt", help=f"{', '.join(FORMATS)} (default: from --out, else mp4 for h264, mov for the rest)"
    )
    output.add_argument("--device", choices=DEVICES, help=f"where to render (default {DEFAULTS.device})")
    output.add_argument("--precision", choices=PRECISIONS, help=f"generator arithmetic (default {DEFAULTS.precision})")


def add_beat_options(parser) -> None:
    """`render loop` and `generate`: loops locked to the music's clock."""
    beat = parser.add_argument_group("music's clock: loops of whole bars at a tempo, kicking on every beat")
    beat.add_argument(
        "--bpm", type=float, help="tempo, beats per minute ({:g} to {:g}); the loop lasts --bars bars".format(*clips.BPM_RANGE)
    )
    beat.add_argument(
        "--audio", type=Path, metavar="TRACK", help="take the tempo from this music file instead of --bpm (nothing is muxed)"
    )
    beat.add_argument("--bars", type=int, help=f"loop length in bars, instead of --seconds (default {clips.BeatOptions.bars})")
    beat.add_argument("--beats-per-bar", type=int, metavar="N", help=f"(default {clips.BeatOptions.beats_per_bar})")
    beat.add_argument(
        "--pulse", type=float, help=f"how far each beat kicks the picture, 0 to 1 (default {clips.BeatOptions.pulse:g})"
    )
    beat.add_argument(
        "--effects",
        type=parse_effects,
        metavar="LIST",
        help="comma-separated effects fired on every beat, e.g. zoom,flash (default none)",
    )
    beat.add_argument(
        "--intensity", type=float, help=f"effect strength, 0 to {MAX_INTENSITY:g} (default {clips.BeatOptions.intensity:g})"
    )


def beat_options(args, config: RenderConfig) -> clips.BeatOptions | None:
    """The beat lock the flags ask for (None without --bpm or --audio), after printing the loop's length."""
    beat_flags = {
        "--bars": args.bars,
        "--beats-per-bar": args.beats_per_bar,
        "--pulse": args.pulse,
        "--effects": args.effects,
        "--intensity": args.intensity,
    }
    if args.bpm is None and args.audio is None:
        given_flag = next((flag for flag, value in beat_flags.items() if value is not None), None)
        if given_flag is not None:
            raise RenderError(f"{given_flag}: locks a loop to a tempo; give --bpm or --audio with it")
        return None
    if args.bpm is not None and args.audio is not None:
        raise RenderError(f"--bpm and --audio {args.audio}: give one tempo, not both")
    if args.seconds is not None:
        raise RenderError("--seconds: a loop locked to a tempo lasts whole bars; give --bars instead")
    bpm = args.bpm
    if bpm is None:
        bpm = clips.track_tempo_bpm(args.audio, config.fps)
        console.print(f"tempo of {args.audio}: {bpm:.2f} bpm", markup=False, soft_wrap=True)
    options = from_flags(clips.BeatOptions(bpm=bpm), args)
    console.print(options.describe(config.fps), markup=False, soft_wrap=True)
    return options


def render_config(args) -> RenderConfig:
    return from_flags(DEFAULTS, args)


def report(path: Path) -> int:
    console.print(f"wrote {path}", markup=False)
    return 0


def run_progress(args) -> int:
    options = from_flags(clips.ProgressOptions(), args)
    return each_run(args, lambda run_dir: report(clips.render_progress(run_dir, render_config(args), options, args.out)))


def run_loop(args) -> int:
    config = render_config(args)
    options = from_flags(clips.LoopOptions(), args, beat=beat_options(args, config))
    return each_run(args, lambda run_dir: report(clips.render_loop(run_dir, config, options, args.checkpoint, args.out)))


def run_walk(args) -> int:
    options = from_flags(clips.WalkOptions(), args)
    return each_run(
        args, lambda run_dir: report(clips.render_walk(run_dir, render_config(args), options, args.checkpoint, args.out))
    )


def run_audio(args) -> int:
    options = from_flags(clips.AudioOptions(), args)
    return each_run(
        args,
        lambda run_dir: report(clips.render_audio(run_dir, args.audio, render_config(args), options, args.checkpoint, args.out)),
    )
