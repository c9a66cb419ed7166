"""`vjgan live RUN [RUN ...]`: play trained runs in real time, driven by audio, keys, OSC and MIDI."""

from pathlib import Path

from vjgan.cli.options import from_flags
from vjgan.console import console
from vjgan.device import DEVICES, PRECISIONS
from vjgan.errors import LiveError
from vjgan.render.effects import EFFECTS, parse_effects
from vjgan.render.layout import FILTERS
from vjgan.sizes import parse_frame_size_wh

# Parameters the command line can set at the start (each also moves live: keys, OSC, MIDI); their help is
# the parameter table's (`live.params.PARAMS`).
PARAM_FLAGS = (
    "layout",
    "motion",
    "speed",
    "loop_seconds",
    "beats_per_loop",
    "bpm",
    "truncation",
    "seed",
    "crossfade",
    "intensity",
    "audio_motion",
    "sensitivity",
)


def register(parser) -> None:
    from vjgan.live.engine import LiveConfig
    from vjgan.live.midi import APIS as MIDI_APIS
    from vjgan.live.params import PARAMS
    from vjgan.live.session import LiveOptions

    defaults, options = LiveConfig(), LiveOptions()
    parser.description = (
        "Play trained runs live: a window (or a projector, --fullscreen), NDI, Syphon, Spout, a virtual camera or a "
        "recording; driven by live audio (--audio-in) or a file (--audio), keys, OSC (--osc-port) and MIDI (--midi)."
    )
    parser.add_argument("runs", type=Path, nargs="*", metavar="RUN", help="run directories made by vjgan train (a genre each)")
    lists = parser.add_argument_group("lists (then exit)")
    lists.add_argument("--list-devices", action="store_true", help="sound devices for --audio-in")
    lists.add_argument("--list-midi", action="store_true", help="MIDI inputs for --midi")
    lists.add_argument("--list-monitors", action="store_true", help="monitors for --monitor")
    lists.add_argument("--list-params", action="store_true", help="every parameter: OSC addresses, ranges, keys")

    picture = parser.add_argument_group("picture")
    picture.add_argument("--fps", type=float, help=f"frames per second (default {defaults.fps:g}; 60 where it holds)")
    picture.add_argument(
        "--size",
        dest="frame_size_wh",
        type=parse_frame_size_wh,
        metavar="WxH",
        help="output size, up to 4K (default {}x{})".format(*defaults.frame_size_wh),
    )
    picture.add_argument("--filter", choices=FILTERS, help=f"upscaling filter (default {defaults.filter})")
    picture.add_argument(
        "--tiles", dest="max_tiles", type=int, help=f"samples a grid or wall shows at most (default {defaults.max_tiles})"
    )
    picture.add_argument("--device", choices=DEVICES, help=f"where the generator runs (default {defaults.device})")
    picture.add_argument("--precision", choices=PRECISIONS, help=f"generator arithmetic (default {defaults.precision})")
    for name in PARAM_FLAGS:
        spec = PARAMS[name]
        picture.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type={"float": float, "int": int}.get(spec.kind, str),
            choices=spec.choices or None,
            help=f"{spec.doc} (default {spec.default})",
        )
    picture.add_argument(
        "--effects",
        type=parse_effects,
        metavar="LIST",
        help=f"effects the music drives, comma-separated from {', '.join(EFFECTS)}; 'all' or '' (default none)",
    )

    audio = parser.add_argument_group("audio")
    audio.add_argument("--audio-in", dest="audio_device", metavar="NAME|INDEX", help="live input (see --list-devices)")
    audio.add_argument("--audio", dest="audio_file", type=Path, metavar="FILE", help="a track played in real time")
    audio.add_argument("--play-audio", choices=("auto", "yes", "no"), help="hear --audio on the default output (default auto)")
    audio.add_argument("--loop-audio", action="store_true", default=None, help="start --audio again when it ends")

    control = parser.add_argument_group("control")
    control.add_argument("--osc-port", type=int, metavar="PORT", help="listen for OSC on this UDP port (see --list-params)")
    control.add_argument("--osc-host", metavar="ADDRESS", help=f"listen on this address (default {options.osc_host}: all)")
    control.add_argument("--osc-send", metavar="HOST:PORT", help="send /vjgan/beat, /vjgan/onset, /vjgan/loop pulses here")
    control.add_argument("--midi", dest="midi_port", metavar="NAME|INDEX", help="MIDI input (see --list-midi)")
    control.add_argument("--midi-api", choices=tuple(MIDI_APIS), help="rtmidi API (default: the platform's own)")
    control.add_argument("--preset", type=Path, metavar="FILE", help="TOML preset loaded at the start; key p saves it")
    control.add_argument("--status", action="store_true", default=None, help="show the status (window overlay or terminal)")

    out = parser.add_argument_group("outputs")
    out.add_argument("--headless", action="store_true", default=None, help="no window: outputs only")
    out.add_argument("--fullscreen", action="store_true", default=None, help="fill --monitor with the picture (a projector)")
    out.add_argument("--monitor", type=int, metavar="N", help="monitor for --fullscreen (see --list-monitors; default 0)")
    out.add_argument("--window-size", dest="window_size_wh", type=parse_frame_size_wh, metavar="WxH", help="window size")
    out.add_argument("--ndi", metavar="NAME", help="send as an NDI source (Resolume, OBS, TouchDesigner, vMix)")
    out.add_argument("--syphon", metavar="NAME", help="macOS: a Syphon server")
    out.add_argument("--spout", metavar="NAME", help="Windows: a Spout sender")
    out.add_argument("--virtual-cam", action="store_true", default=None, help="a virtual camera (OBS, v4l2loopback)")
    out.add_argument("--record", type=Path, metavar="FILE", help="record what is shown (.mp4 H.264, .mov ProRes/HAP/DXV)")
    out.add_argument("--codec", dest="record_codec", help="codec of --record (default: the file's format's own)")
    out.add_argument("--seconds", type=float, help="stop after this long (default: until q or Esc)")
    out.add_argument("--stats", dest="stats_path", type=Path, metavar="FILE", help="write per-frame timings as JSON at the end")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.list_devices or args.list_midi or args.list_monitors or args.list_params:
        return list_things(args)
    if not args.runs:
        raise LiveError("give one or more run directories to play (vjgan live RUN [RUN ...])")
    from vjgan.live.engine import LiveConfig, with_effects_reacting
    from vjgan.live.params import LiveParams
    from vjgan.live.session import LiveOptions, LiveSession

    config = from_flags(LiveConfig(), args)
    options = from_flags(LiveOptions(on_message=say), args)
    session = LiveSession(args.runs, config, options, LiveParams(n_runs=len(args.runs)))  # loads --preset
    # flags given win over the preset's values
    session.params.update({name: getattr(args, name) for name in PARAM_FLAGS if getattr(args, name) is not None})
    if args.effects is not None:
        with_effects_reacting(session.params, args.effects)
    if args.status:
        session.params.set("status", True)
    stats = session.run().summary()
    say(
        f"live: {stats['ticks']} frames at {stats['fps_shown']:.1f} fps (target {stats['fps_target']:g}), "
        f"{100 * stats['dropped_fraction']:.2f}% dropped, generator {stats['generator_ms_p50']:.1f} ms median"
    )
    return 0


def say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


def list_things(args) -> int:
    if args.list_devices:
        from vjgan.live.audio_input import list_audio_devices

        for line in list_audio_devices() or ["(no sound devices: none is connected, or no sound server runs)"]:
            say(line)
    if args.list_midi:
        from vjgan.live.midi import list_midi_inputs

        for line in list_midi_inputs(args.midi_api) or ["(no MIDI inputs)"]:
            say(line)
    if args.list_monitors:
        from vjgan.live.window import list_monitors

        for line in list_monitors():
            say(line)
    if args.list_params:
        from vjgan.live.keys import KEYS
        from vjgan.live.osc import address_list
        from vjgan.live.params import LiveParams
        from vjgan.live.session import SESSION_ADDRESSES, LiveSession

        handlers = {address: getattr(LiveSession, method) for address, method in SESSION_ADDRESSES.items()}
        for line in address_list(LiveParams(), handlers):
            say(line)
        say("keys in the window:")
        for key, what in KEYS.items():
            say(f"  {key:<7} {what}")
    return 0
