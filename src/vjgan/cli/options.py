"""Flags declared once, each with the config field it sets.

A flag's `dest` is the name of the field it overrides (`--images` sets `images_total`, `--width` sets
`model_width`, i.e. `config.model.width`) and its default is None, "not given", so the dataclass keeps the
one default. `from_flags` builds a config from the parsed arguments; `argument_type` lets a library parser
(e.g. `vjgan.sizes`) check a flag's text while argparse reads it.
"""

import argparse

from vjgan.errors import VjganError
from vjgan.overrides import override_names, with_overrides


def from_flags(config, args: argparse.Namespace, **computed):
    """`config` with every field a flag was given for replaced; `computed` adds values worked out from flags
    (a tempo measured in a track, a de-duplicated list), named like fields too."""
    names = override_names(config)
    given = {name: value for name, value in {**vars(args), **computed}.items() if name in names}
    return with_overrides(config, **given)


def argument_type(parse):
    """`parse` as an argparse `type` whose refusal is a usage error (exit 2) showing its message."""

    def parse_argument(text: str):
        try:
            return parse(text)
        except VjganError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_argument
