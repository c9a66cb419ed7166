"""Real-time playback of trained runs: audio in, controls (keys, OSC, MIDI, presets), a generator thread,
and outputs (a window, NDI, Syphon, Spout, a virtual camera, recording). Needs `pip install "vjgan[live]"`."""

import importlib
from types import ModuleType

from vjgan.errors import LiveError


def import_package(module: str, what: str, package: str) -> ModuleType:
    """`module`, or one `LiveError` naming the install command when it (or a library it loads) is missing: the
    live packages are optional, imported only when the part that needs them opens."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise LiveError(f'{what} needs {package} ({error}): pip install "vjgan[live]"') from None
