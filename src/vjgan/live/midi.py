"""MIDI control: CCs and notes from a controller bound to live parameters, with a learn mode.

A mapping binds one control (a CC or a note, on a channel) to one parameter; presets store them as
[[midi]] entries (`vjgan.live.presets`):

    {"kind": "cc" | "note", "channel": 0-15, "number": 0-127, "param": "<name>"}

Channels count from 0 here, as in mido (a controller's channel 1 is 0). What a control does:

    a CC, value 0..127       sets the parameter from value/127 across its range (a trigger fires at >= 64,
                             so a button sending 127 on press and 0 on release fires once)
    a note-on, velocity v    fires a trigger, toggles a bool, sets a number or a choice from v/127
    a note-off               nothing (a note-on of velocity 0 is a note-off)

Learn mode (`learn(param)`): the next CC or note received is bound to that parameter, replacing what
that control was bound to; the message that teaches moves nothing.

The port is opened through mido's python-rtmidi backend, on rtmidi's default API (ALSA on Linux,
CoreMIDI on macOS, Windows MM) or the one named by `api` / the `VJGAN_MIDI_API` environment variable
(`jack` works where ALSA cannot, as in a container without /dev/snd/seq). Messages arrive on rtmidi's
own thread through mido's callback, so there is no polling and no thread of ours. JACK joins the port at
its next cycle, so a message sent in the very instant the port opens may be lost.
"""

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial

from vjgan.errors import LiveError
from vjgan.live import import_package
from vjgan.live.params import PARAMS, LiveParams

APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE", "winmm": "WINDOWS_MM"}
KINDS = ("cc", "note")
FULL_SCALE = 127  # the largest CC value or velocity: a control at full scale is fraction 1


@dataclass(frozen=True)
class MidiMapping:
    kind: str  # "cc" or "note"
    channel: int  # 0-15
    number: int  # CC or note number, 0-127
    param: str

    @property
    def control(self) -> tuple[str, int, int]:
        return self.kind, self.channel, self.number


def check_mapping(entry) -> MidiMapping:
    """A preset's [[midi]] entry as a mapping; one that is not is a LiveError naming what is wrong."""
    if not isinstance(entry, dict):
        raise LiveError(f"MIDI mapping {entry!r}: must be a table of kind, channel, number and param")
    fields = ("kind", "channel", "number", "param")
    problems = [f"missing {name}" for name in fields if name not in entry]
    problems += [f"unknown key {name!r}" for name in entry if name not in fields]
    kind, channel, number, param = (entry.get(name) for name in fields)
    if "kind" in entry and kind not in KINDS:
        problems.append(f"kind {kind!r} is not cc or note")
    for name, value, high in (("channel", channel, 15), ("number", number, 127)):
        if name in entry and (type(value) is not int or not 0 <= value <= high):
            problems.append(f"{name} {value!r} is not a whole number 0-{high}")
    if "param" in entry and param not in PARAMS:
        problems.append(f"param {param!r} is unknown (see `vjgan live --list-params`)")
    if problems:
        raise LiveError(f"MIDI mapping {entry}: {'; '.join(problems)}")
    return MidiMapping(kind, channel, number, param)


def _api_choice(api: str | None) -> str | None:
    """The API asked for by `api` or $VJGAN_MIDI_API, as one of `APIS`' names; None for rtmidi's default."""
    api = api or os.environ.get("VJGAN_MIDI_API") or None
    if api is not None and api.lower() not in APIS:
        raise LiveError(f"MIDI API {api!r}: unknown; choose one of {', '.join(APIS)} with --midi-api")
    return api and api.lower()


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """ALSA and JACK print their own lines straight to file descriptor 2 when they cannot start; the
    LiveError raised says it in one line, so theirs are dropped while a MIDI client is made."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _backend(api: str | None) -> Iterator:
    """mido's rtmidi backend for `api`, turning a missing package or an API that cannot start into one LiveError."""
    choice = _api_choice(api)
    described = f"MIDI API {choice}" if choice else "the default MIDI API"
    mido = import_package("mido", "MIDI", "mido")
    import_package("rtmidi", "MIDI", "python-rtmidi")
    backend = mido.Backend("mido.backends.rtmidi", api=APIS.get(choice), load=True)
    built = [name for name, rtmidi_name in APIS.items() if rtmidi_name in backend.module.get_api_names()]
    if choice is not None and choice not in built:
        raise LiveError(f"{described}: not in this python-rtmidi (it has {', '.join(built)}); choose another with --midi-api")
    try:
        with _quiet_native_stderr():
            yield backend
    except OSError as error:  # rtmidi's SystemError (no ALSA sequencer, no JACK server) is an OSError
        hint = "start a JACK server (jackd)" if choice == "jack" else "try --midi-api jack"
        raise LiveError(f"{described} cannot start ({error}); {hint}") from None


def list_midi_inputs(api: str | None = None) -> list[str]:
    """The names of the MIDI inputs `api` offers (`vjgan live --list-midi`)."""
    with _backend(api) as backend:
        return backend.get_input_names()


def _pick_port(names: list[str], port: str | int) -> str:
    """The input named `port`: an index, a whole name, or a unique part of one (case ignored)."""
    listed = f"inputs: {', '.join(names)}" if names else "no MIDI inputs found"
    if isinstance(port, int) or port.isdigit():
        if 0 <= int(port) < len(names):
            return names[int(port)]
        raise LiveError(f"MIDI port {port}: no input with that index ({listed}); see `vjgan live --list-midi`")
    if port in names:
        return port
    matches = [name for name in names if port.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    reason = f"names {len(matches)} inputs; give more of the name" if matches else "no such input"
    raise LiveError(f"MIDI port {port!r}: {reason} ({listed}); see `vjgan live --list-midi`")


class MidiControl:
    """Listens to the MIDI input `port` (index or name) and moves `params` by `mappings` until closed."""

    def __init__(
        self,
        params: LiveParams,
        port: str | int,
        mappings: list[dict] = (),
        api: str | None = None,
        on_message: Callable[[str], None] | None = None,
    ):
        self.params = params
        self._on_message = on_message or partial(print, file=sys.stderr)
        self._lock = threading.Lock()  # the bindings are changed by the app's threads and read by rtmidi's
        self._bindings: dict[tuple[str, int, int], str] = {}
        self._learning: str | None = None
        self.set_mappings(mappings)
        with _backend(api) as backend:
            self.port_name = _pick_port(backend.get_input_names(), port)
            self._port = backend.open_input(self.port_name, callback=self._receive)

    def set_mappings(self, entries: list[dict]) -> None:
        """Replaces every binding with `entries` (a preset's [[midi]]), all checked before any is used."""
        mappings = [check_mapping(entry) for entry in entries]
        with self._lock:
            self._bindings = {mapping.control: mapping.param for mapping in mappings}

    def mappings(self) -> list[dict]:
        """The bindings as a preset stores them."""
        with self._lock:
            return [asdict(MidiMapping(*control, param)) for control, param in self._bindings.items()]

    def learn(self, param: str | None) -> None:
        """Binds the next CC or note received to `param`; None stops learning."""
        if param is not None:
            self.params.spec(param)
        with self._lock:
            self._learning = param

    def close(self) -> None:
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _receive(self, message) -> None:
        """mido's callback, on rtmidi's thread: it must never raise, so a failure is one reported line."""
        try:
            self._act(message)
        except Exception as error:  # a LiveError from the store, or a bug: the port keeps listening either way
            self._on_message(f"midi: {message}: {error}")

    def _act(self, message) -> None:
        if message.type == "control_change":
            control, amount = ("cc", message.channel, message.control), message.value
        elif message.type == "note_on" and message.velocity > 0:
            control, amount = ("note", message.channel, message.note), message.velocity
        else:
            return
        with self._lock:
            if self._learning is not None:
                self._bindings[control] = param = self._learning
                self._learning = None
                learned = True
            else:
                param, learned = self._bindings.get(control), False
        if learned:
            self._on_message(f"midi: {control[0]} {control[2]} on channel {control[1]} -> {param} (learned)")
        elif param is not None:
            self._apply(control[0], param, amount / FULL_SCALE)

    def _apply(self, kind: str, param: str, fraction: float) -> None:
        spec = self.params.spec(param)
        if kind == "note" and spec.kind == "trigger":
            self.params.fire(param)
        elif kind == "note" and spec.kind == "bool":
            self.params.set(param, not self.params.get(param))
        else:
            self.params.set_fraction(param, fraction)
