"""The `vjgan` command: argument parsing and printing only, over the library API.

Each stage's command lives in its own module here, exposing `register(parser)`, which adds its flags to
the command's sub-parser and sets the `run` default called with the parsed arguments. Flags default to
"not given" (None) and override the library's dataclass defaults (`cli.options`), so each default is
declared once.

Start-up is kept short: only the command being run has its module imported and its flags registered,
so `vjgan --help` imports no stage (and no torch, numpy or PyAV), and `vjgan ingest` or `vjgan synth`
import only what those stages need, never torch.
"""

import argparse
import importlib
import os
import sys
from typing import NoReturn

from safetensors import SafetensorError

from vjgan import __version__
from vjgan.errors import VjganError
from vjgan.files import failure_reason

# Each command's one-line help, in the order `vjgan --help` lists them; `vjgan.cli.<name>` registers its flags.
COMMANDS = {
    "synth": "write procedural VJ clips into genre folders (footage to try vjgan on)",
    "ingest": "decode genre folders of videos into frame stores (incremental)",
    "train": "train a GAN on a frame store; re-run the same command to resume",
    "render": "render VJ clips from a run: the training video, loops, walks, audio-reactive clips",
    "generate": "mass-produce seamless loops from a run (consecutive seeds), with a contact sheet",
    "eval": "measure a run's quality (SWD, diversity) at its snapshots",
    "live": "play runs live: audio-reactive, OSC/MIDI controlled, to a window, projector, NDI, recording",
    "demo": "the whole path on procedural footage: synth, ingest, train, render, index (under 10 minutes on a 2-core CPU)",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for `argv`: every command listed, the flags of the one `argv` runs (its first word) registered."""
    parser = argparse.ArgumentParser(
        prog="vjgan",
        description="Turn genre folders of VJ footage into GAN-dreamed VJ clips.",
    )
    parser.add_argument("--version", action="version", version=f"vjgan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, help in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help)
        if name == command:
            importlib.import_module(f"vjgan.cli.{name}").register(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    code = run_command(sys.argv[1:] if argv is None else argv)
    if argv is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        leave_torchrun_rank(code)
    return code


def leave_torchrun_rank(code: int) -> NoReturn:
    """End a torchrun rank with its output flushed but without the interpreter's teardown. There, after the
    run was trained, its files written and its process group destroyed, gloo's C++ threads can still abort the
    process (`terminate called without an active exception`, seen once in CI), and torchrun then reports
    the finished job as failed. Nothing is left to clean up: every file vjgan writes is complete by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_command(argv: list[str]) -> int:
    try:
        args = build_parser(argv).parse_args(argv)
        return args.run(args) or 0
    except VjganError as error:
        print_error(error)
        return 1
    except (OSError, SafetensorError) as error:  # the environment: a full disk, a vanished folder, a permission
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        print_error(f"{where}{failure_reason(error)}")
        return 1
    except KeyboardInterrupt:
        print_line("vjgan: interrupted; finished work is kept, re-run the same command to continue")
        return 130


def print_line(text: str, style: str | None = None) -> None:
    """`text` on the console as one logical line; rich is imported only here, off the start-up path."""
    from vjgan.console import console, printable

    console.print(printable(text), style=style, soft_wrap=True, markup=False)


def print_error(message) -> None:
    """A failure as every command reports it: one red line, `vjgan: error: <file>: <reason>`."""
    print_line(f"vjgan: error: {message}", style="red")


if __name__ == "__main__":
    sys.exit(main())
