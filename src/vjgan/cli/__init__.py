"""The `vjgan` command: argument parsing and printing only, over the library API.

Each stage's command lives in its own module here, exposing `register(subparsers)`, which adds
a sub-parser whose `run` default is called with the parsed arguments. Flags default to "not given"
(None) and override the library's dataclass defaults, so each default is declared once.
"""

import argparse
import importlib
import sys

from safetensors import SafetensorError

from vjgan import __version__
from vjgan.console import console, printable
from vjgan.errors import VjganError
from vjgan.files import failure_reason

# Order is the order `vjgan --help` lists the stages in.
COMMAND_MODULES = ["synth", "ingest", "train", "render", "generate", "eval", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vjgan",
        description="Turn genre folders of VJ footage into GAN-dreamed VJ clips.",
    )
    parser.add_argument("--version", action="version", version=f"vjgan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"vjgan.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except VjganError as error:
        console.print(f"vjgan: error: {printable(str(error))}", style="red", soft_wrap=True, markup=False)
        return 1
    except (OSError, SafetensorError) as error:  # the environment: a full disk, a vanished folder, a permission
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        console.print(f"vjgan: error: {printable(where + failure_reason(error))}", style="red", soft_wrap=True, markup=False)
        return 1
    except KeyboardInterrupt:
        console.print("vjgan: interrupted; finished work is kept, re-run the same command to continue", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
