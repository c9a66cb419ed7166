"""Live presets: every parameter's value and every controller mapping, in one TOML file a person can edit.

    format = "vjgan-live-preset"
    version = 1
    [params]            # any of `vjgan live --list-params`; missing ones keep their current value
    speed = 1.5
    layout = "grid"
    [[midi]]            # what `vjgan.live.midi` binds: a CC or a note on a channel, to a parameter
    kind = "cc"
    channel = 0
    number = 7
    param = "speed"

This module owns the file's layout; the MIDI entries are checked by `vjgan.live.midi` when bound.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from vjgan.errors import LiveError
from vjgan.files import write_atomic

PRESET_FORMAT = "vjgan-live-preset"
PRESET_VERSION = 1


@dataclass
class Preset:
    values: dict = field(default_factory=dict)  # parameter name -> value
    midi: list[dict] = field(default_factory=list)  # mapping records (see the module docstring)


def save_preset(path: Path, preset: Preset) -> Path:
    document = {"format": PRESET_FORMAT, "version": PRESET_VERSION, "params": preset.values, "midi": preset.midi}
    write_atomic(Path(path), tomli_w.dumps(document), "a live preset")
    return Path(path)


def load_preset(path: Path) -> Preset:
    """The preset at `path`; a file that is not one is a one-line LiveError naming it."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LiveError(f"{path}: no such preset") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise LiveError(f"{path}: not a readable preset ({error})") from None
    if document.get("format") != PRESET_FORMAT:
        raise LiveError(f"{path}: not a vjgan live preset (format {document.get('format')!r})")
    if document.get("version", 0) > PRESET_VERSION:
        raise LiveError(f"{path}: preset version {document['version']} is newer than this vjgan reads ({PRESET_VERSION})")
    values, midi = document.get("params", {}), document.get("midi", [])
    if not isinstance(values, dict) or not isinstance(midi, list) or not all(isinstance(entry, dict) for entry in midi):
        raise LiveError(f"{path}: [params] must be a table and [[midi]] a list of tables")
    return Preset(values, midi)
