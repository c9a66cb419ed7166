"""The window's keys: each a parameter move, so a key does exactly what the same OSC message or MIDI
control would. The table is the documentation (`vjgan live --list-keys`, the README)."""

from vjgan.live.params import MOTIONS, LiveParams

SPEED_STEP = 1.25  # up/down multiply or divide the speed by this
TRUNCATION_STEP = 0.1  # [ and ] move the truncation by this

# key -> (what it does, for the help)
KEYS = {
    "space": "freeze / unfreeze the picture",
    "n": "new seed",
    "right": "next run (crossfades)",
    "left": "previous run",
    "1": "layout single",
    "2": "layout grid",
    "3": "layout wall",
    "m": "next motion (walk, loop, beat)",
    "up": f"speed x{SPEED_STEP:g}",
    "down": f"speed /{SPEED_STEP:g}",
    "[": f"truncation -{TRUNCATION_STEP:g} (tamer)",
    "]": f"truncation +{TRUNCATION_STEP:g} (wilder)",
    "t": "tap tempo",
    "b": "follow the heard tempo again (after taps)",
    "e": "all effects react to the music / none",
    "g": "glitch fader full / off",
    "w": "flash fader full / off",
    "s": "status overlay on / off",
    "f": "fullscreen on / off",
    "p": "save the preset (--preset FILE)",
    "escape": "quit (also q)",
}


def apply_key(key: str, params: LiveParams) -> str | None:
    """Moves the parameter `key` stands for; returns an action the session itself carries out
    ("fullscreen", "save_preset", "quit"), or None."""
    values = params.values()
    moves = {
        "space": lambda: params.set("freeze", not values["freeze"]),
        "n": lambda: params.fire("new_seed"),
        "right": lambda: params.fire("next_run"),
        "left": lambda: params.fire("prev_run"),
        "1": lambda: params.set("layout", "single"),
        "2": lambda: params.set("layout", "grid"),
        "3": lambda: params.set("layout", "wall"),
        "m": lambda: params.set("motion", MOTIONS[(MOTIONS.index(values["motion"]) + 1) % len(MOTIONS)]),
        "up": lambda: params.set("speed", values["speed"] * SPEED_STEP),
        "down": lambda: params.set("speed", values["speed"] / SPEED_STEP),
        "[": lambda: params.set("truncation", values["truncation"] - TRUNCATION_STEP),
        "]": lambda: params.set("truncation", values["truncation"] + TRUNCATION_STEP),
        "t": lambda: params.fire("tap"),
        "b": lambda: params.set("bpm_follow", True),
        "e": lambda: toggle_reacting(params, values),
        "g": lambda: params.set("fx_glitch", 0.0 if values["fx_glitch"] else 1.0),
        "w": lambda: params.set("fx_flash", 0.0 if values["fx_flash"] else 1.0),
        "s": lambda: params.set("status", not values["status"]),
    }
    if key in moves:
        moves[key]()
        return None
    return {"f": "fullscreen", "p": "save_preset", "escape": "quit", "q": "quit"}.get(key)


def toggle_reacting(params: LiveParams, values: dict) -> None:
    names = [name for name in values if name.startswith("react_")]
    any_on = any(values[name] for name in names)
    params.update({name: not any_on for name in names})
