"""Every parameter a performer can move, in one table, and the store every control writes into.

The keyboard, OSC, MIDI and presets all set parameters by name through `LiveParams`, and the generator
thread reads a consistent snapshot once per frame, so a control never waits on a frame and a frame never
sees half a preset. Values are coerced and clamped into their range rather than refused (a fader sent a
little past its end, an OSC float for an integer), because a performance must keep playing; only a
name that does not exist or a value that means nothing (text for a number) is an error.

Triggers (a new seed, a tap of the tempo, the next run) are not values but events: `fire` queues them
and the generator thread takes them with `take_fired`, so a trigger sent twice between two frames acts
twice.
"""

import math
import threading
from dataclasses import dataclass, replace

from vjgan.errors import LiveError
from vjgan.render.effects import EFFECTS
from vjgan.render.layout import LAYOUTS

KINDS = ("float", "int", "bool", "choice", "trigger")
MOTIONS = ("walk", "loop", "beat")  # a wandering walk, a seamless loop, a loop locked to the beat


@dataclass(frozen=True)
class Param:
    """One parameter: its kind, default and range (`low`..`high` for numbers, `choices` for a choice)."""

    name: str
    kind: str
    default: float | int | bool | str | None
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()
    doc: str = ""

    def coerce(self, value) -> float | int | bool | str:
        """`value` (a number, a bool, or text as OSC or a preset may send it) as this parameter's type, clamped."""
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            index = self.as_number(value)
            return self.choices[min(len(self.choices) - 1, max(0, int(round(index))))]
        if self.kind == "bool":
            if isinstance(value, str) and value.strip().lower() in ("true", "on", "yes", "false", "off", "no"):
                return value.strip().lower() in ("true", "on", "yes")
            return self.as_number(value) >= 0.5
        number = min(self.high, max(self.low, self.as_number(value)))
        return int(round(number)) if self.kind == "int" else float(number)

    def from_fraction(self, fraction: float) -> float | int | bool | str:
        """A controller position in [0, 1] (a MIDI fader) mapped across this parameter's range."""
        fraction = min(1.0, max(0.0, float(fraction)))
        if self.kind == "choice":
            return self.choices[min(len(self.choices) - 1, int(fraction * len(self.choices)))]
        if self.kind in ("bool", "trigger"):
            return fraction >= 0.5
        return self.coerce(self.low + fraction * (self.high - self.low))

    def to_fraction(self, value) -> float:
        """Where `value` sits in this parameter's range, in [0, 1] (for controller feedback and the status)."""
        if self.kind == "choice":
            return self.choices.index(value) / max(1, len(self.choices) - 1)
        if self.kind in ("bool", "trigger"):
            return 1.0 if value else 0.0
        return (float(value) - self.low) / (self.high - self.low) if self.high > self.low else 0.0

    def as_number(self, value) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LiveError(f"parameter {self.name}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise LiveError(f"parameter {self.name}: {value!r} is not a finite number")
        return number


def _table() -> dict[str, Param]:
    params = [
        Param("run", "int", 0, 0, 0, doc="which loaded run (genre) plays, from 0; changing it crossfades"),
        Param("crossfade", "float", 2.0, 0.0, 30.0, doc="seconds a change of run, seed or layout blends over"),
        Param("motion", "choice", "walk", choices=MOTIONS, doc="walk (never repeats), loop (seamless), beat (bpm-locked loop)"),
        Param("speed", "float", 1.0, 0.0, 8.0, doc="how fast the picture travels: 1 = one loop turn in loop_seconds"),
        Param("loop_seconds", "float", 16.0, 1.0, 600.0, doc="length of a loop (walk and loop motions) at speed 1"),
        Param("beats_per_loop", "int", 16, 1, 256, doc="beats in one loop of the beat motion"),
        Param("bpm", "float", 120.0, 20.0, 400.0, doc="tempo of the beat motion and the beat pulses"),
        Param("bpm_follow", "bool", True, doc="set bpm from the tempo heard in the audio"),
        Param("truncation", "float", 1.0, 0.0, 3.0, doc="latent spread: <1 tamer, >1 wilder (as in rendered clips)"),
        Param("seed", "int", 0, 0, 2**31 - 1, doc="the seed of the latent paths"),
        Param("freeze", "bool", False, doc="hold the picture (effects keep playing)"),
        Param("layout", "choice", "single", choices=LAYOUTS, doc="single, grid or wall"),
        Param("intensity", "float", 1.0, 0.0, 4.0, doc="how strongly the audio drives the effects"),
        Param("audio_motion", "float", 1.0, 0.0, 4.0, doc="how strongly the audio moves the picture (onsets kick)"),
        Param("sensitivity", "float", 1.0, 0.0, 4.0, doc="onset and level sensitivity: higher fires on quieter hits"),
        Param("auto_gain", "bool", True, doc="follow the input level so quiet and loud inputs drive alike"),
        Param("gain", "float", 1.0, 0.0, 16.0, doc="input gain when auto_gain is off"),
        Param("status", "bool", False, doc="show the status overlay (fps, timings, audio level, mappings)"),
        Param("new_seed", "trigger", None, doc="jump to a fresh seed"),
        Param("tap", "trigger", None, doc="tap tempo: bpm from the last taps"),
        Param("next_run", "trigger", None, doc="crossfade to the next run"),
        Param("prev_run", "trigger", None, doc="crossfade to the previous run"),
    ]
    for effect in EFFECTS:
        params.append(Param(f"fx_{effect}", "float", 0.0, 0.0, 1.0, doc=f"{effect}: manual strength, on top of the audio's"))
        params.append(Param(f"react_{effect}", "bool", False, doc=f"{effect}: driven by the audio"))
    return {param.name: param for param in params}


PARAMS = _table()


class LiveParams:
    """The live parameters' current values: set from any thread, read as one snapshot per frame.

    `version` counts changes, so a reader can tell that something moved since its last frame.
    """

    def __init__(self, n_runs: int = 1, values: dict | None = None):
        self.specs = {**PARAMS, "run": replace(PARAMS["run"], high=max(0, n_runs - 1))}
        self._lock = threading.Lock()
        self._values = {name: spec.default for name, spec in self.specs.items() if spec.kind != "trigger"}
        self._fired: list[str] = []
        self.version = 0
        if values:
            self.update(values)

    def spec(self, name: str) -> Param:
        try:
            return self.specs[name]
        except KeyError:
            raise LiveError(f"parameter {name!r}: unknown; see `vjgan live --list-params`") from None

    def get(self, name: str):
        spec = self.spec(name)
        if spec.kind == "trigger":
            raise LiveError(f"parameter {name}: a trigger has no value")
        return self._values[name]

    def values(self) -> dict:
        """A copy of every value: the snapshot a frame is made from."""
        return dict(self._values)

    def set(self, name: str, value):
        """Sets `name` to `value` coerced into its type and range (a trigger fires if value is truthy or None);
        returns the value stored."""
        spec = self.spec(name)
        if spec.kind == "trigger":
            if value is None or spec.from_fraction(float(spec.as_number(value))):
                self.fire(name)
            return None
        return self._store({name: spec.coerce(value)})[name]

    def set_fraction(self, name: str, fraction: float):
        """Sets `name` from a controller position in [0, 1] spread across its range."""
        spec = self.spec(name)
        if spec.kind == "trigger":
            if spec.from_fraction(fraction):
                self.fire(name)
            return None
        return self._store({name: spec.from_fraction(fraction)})[name]

    def update(self, values: dict) -> None:
        """Sets several values at once (a preset): all are checked before any is stored."""
        coerced = {}
        for name, value in values.items():
            spec = self.spec(name)
            if spec.kind != "trigger":
                coerced[name] = spec.coerce(value)
        self._store(coerced)

    def fire(self, name: str) -> None:
        if self.spec(name).kind != "trigger":
            raise LiveError(f"parameter {name}: not a trigger")
        with self._lock:
            self._fired.append(name)
            self.version += 1

    def take_fired(self) -> list[str]:
        """The triggers fired since the last call, in order; they are consumed."""
        with self._lock:
            fired, self._fired = self._fired, []
        return fired

    def _store(self, values: dict) -> dict:
        with self._lock:
            self._values = {**self._values, **values}  # replaced whole: a reader's snapshot is never half updated
            self.version += 1
        return values
