"""OSC over real UDP on loopback and MIDI over real JACK ports move the live parameters within a frame."""

import queue
import socket
import statistics
import sys
import threading
import time

import mido
import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient
from services import jack_server  # noqa: F401

from vjgan.errors import LiveError
from vjgan.live.midi import MidiControl, check_mapping, list_midi_inputs
from vjgan.live.osc import OscControl
from vjgan.live.params import LiveParams
from vjgan.live.presets import Preset, load_preset, save_preset

FRAME_SECONDS = 1 / 30  # one frame at 30 fps: the most a control may take to land


def wait_for_value(params: LiveParams, name: str, value, seconds: float = 2.0) -> None:
    """Returns as soon as parameter `name` holds exactly `value` (polled finely); fails after `seconds`."""
    deadline = time.perf_counter() + seconds
    while params.get(name) != value:
        if time.perf_counter() > deadline:
            pytest.fail(f"{name} is {params.get(name)!r}, not {value!r}, after {seconds} s")
        time.sleep(0.0002)


def assert_within_a_frame(seconds: list[float], what: str) -> None:
    """Typically within a frame; the worst case bounded more loosely, as a CI box whose 2 cores are busy with
    other tests can keep any thread (jackd's included) off the CPU for a while."""
    print(f"{what}: median {statistics.median(seconds) * 1000:.2f} ms, max {max(seconds) * 1000:.2f} ms")
    assert statistics.median(seconds) < FRAME_SECONDS
    assert max(seconds) < 3 * FRAME_SECONDS


class OscRig:
    """An OscControl on a free loopback port, a client sending to it, and its reported lines."""

    def __init__(self, params: LiveParams, handlers: dict | None = None):
        self.params = params
        self.lines: queue.Queue[str] = queue.Queue()
        self.synced = threading.Event()
        handlers = {"/test/sync": self.synced.set, **(handlers or {})}
        self.control = OscControl(params, 0, host="127.0.0.1", on_message=self.lines.put, handlers=handlers)
        self.client = SimpleUDPClient("127.0.0.1", self.control.port)

    def send(self, address: str, *args) -> None:
        self.client.send_message(address, list(args))

    def sync(self) -> None:
        """Returns once every message sent before it has been handled (the server handles them in order)."""
        self.synced.clear()
        self.send("/test/sync")
        assert self.synced.wait(2), "the OSC server stopped answering"

    def close(self) -> None:
        self.control.close()
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def reported(self) -> list[str]:
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get())
        return lines


@pytest.fixture
def osc():
    with OscRig(LiveParams(n_runs=3)) as rig:
        yield rig


def test_osc_message_sets_a_parameter_within_a_frame(osc):
    seconds = []
    for speed in (0.5, 0.75, 1.25, 2.5, 0.125, 7.75, 3.375, 0.0625, 6.0, 1.5):  # exact in OSC's 32-bit floats
        start = time.perf_counter()
        osc.send("/vjgan/speed", speed)
        wait_for_value(osc.params, "speed", speed)  # exactly: a float stays a float, no rounding jumps
        seconds.append(time.perf_counter() - start)
    assert_within_a_frame(seconds, "OSC message to parameter")


def test_osc_sets_every_kind_of_parameter_and_fires_triggers(osc):
    osc.send("/vjgan/layout", "grid")
    osc.send("/vjgan/freeze", True)
    osc.send("/vjgan/auto_gain", 0)
    osc.send("/vjgan/seed", 7.6)
    osc.send("/vjgan/bpm", 1000.0)
    osc.send("/vjgan/run", 2)
    osc.send("/vjgan/truncation/fraction", 0.5)
    osc.send("/vjgan/motion/fraction", 1.0)
    osc.send("/vjgan/fx_*/fraction", 1.0)
    osc.sync()
    values = osc.params.values()
    assert (values["layout"], values["freeze"], values["auto_gain"], values["seed"]) == ("grid", True, False, 8)
    assert (values["bpm"], values["run"], values["truncation"], values["motion"]) == (400.0, 2, 1.5, "beat")
    assert all(value == 1.0 for name, value in values.items() if name.startswith("fx_"))
    osc.send("/vjgan/new_seed")
    osc.send("/vjgan/tap", 1)
    osc.send("/vjgan/tap", 0)  # a button's release
    osc.send("/vjgan/next_run/fraction", 1.0)
    osc.sync()
    assert osc.params.take_fired() == ["new_seed", "tap", "next_run"]
    assert osc.reported() == []


def test_bad_osc_messages_are_one_line_each_and_serving_goes_on():
    def load(path):
        raise LiveError(f"{path}: no such preset")

    bad = [
        ("/vjgan/sped", 1.0),
        ("/vjgan/speed", "fast"),
        ("/vjgan/speed",),
        ("/vjgan/speed", 1.0, 2.0),
        ("/vjgan/speed/fraction", "half"),
        ("/elsewhere/fader1", 0.2),
        ("/vjgan/midi/learn", "speed"),  # an app address this app does not offer
        ("/vjgan/sped/fraction", 0.5),
        ("/vjgan/preset/load", "gone.toml"),
        ("/vjgan/preset/load",),
    ]
    with OscRig(LiveParams(), handlers={"/vjgan/preset/load": load}) as rig:
        for address, *args in bad:
            rig.send(address, *args)
        garbage, cut_short = b"\x00\x01 not OSC at all \xff", b"/vjgan/speed\x00\x00\x00\x00,i\x00\x00\x00\x01"  # int cut short
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(garbage, ("127.0.0.1", rig.control.port))
            raw.sendto(cut_short, ("127.0.0.1", rig.control.port))
            sender = f"127.0.0.1:{raw.getsockname()[1]}"
        rig.sync()
        assert rig.reported() == [
            "osc: /vjgan/sped: unknown parameter 'sped' (did you mean speed?)",
            "osc: /vjgan/speed: parameter speed: 'fast' is not a number",
            "osc: /vjgan/speed: needs a value <float 0..8>",
            "osc: /vjgan/speed: takes one value, got 2",
            "osc: /vjgan/speed/fraction: takes one number 0..1, got 'half'",
            "osc: /elsewhere/fader1: unknown address; see `vjgan live --list-params`",
            "osc: /vjgan/midi/learn: unknown address; see `vjgan live --list-params`",
            "osc: /vjgan/sped/fraction: unknown parameter 'sped' (did you mean speed?)",
            "osc: /vjgan/preset/load: gone.toml: no such preset",
            "osc: /vjgan/preset/load: TypeError: test_bad_osc_messages_are_one_line_each_and_serving_goes_on.<locals>.load() "
            "missing 1 required positional argument: 'path'",
            f"osc: {len(garbage)} bytes from {sender}: not OSC",
            f"osc: {len(cut_short)} bytes from {sender}: a damaged OSC packet (cut short, or a bad type tag)",
        ]
        assert rig.control.last_addresses()[-3:] == ["/vjgan/sped/fraction", "/vjgan/preset/load", "/test/sync"]  # distinct
        assert rig.params.get("speed") == 1.0
        rig.send("/vjgan/speed", 3.0)
        wait_for_value(rig.params, "speed", 3.0)


def test_taken_osc_port_is_one_live_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taker:
        taker.bind(("127.0.0.1", 0))
        port = taker.getsockname()[1]
        with pytest.raises(LiveError) as error:
            OscControl(LiveParams(), port, host="127.0.0.1")
    assert str(error.value) == f"OSC port {port} on 127.0.0.1: taken by another program; choose another with --osc-port"


def test_close_joins_the_server_thread_and_frees_the_port():
    with OscControl(LiveParams(), 0, host="127.0.0.1") as control:
        port = control.port
    start = time.perf_counter()
    control.close()
    assert time.perf_counter() - start < 0.5
    assert not control._thread.is_alive()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))


def test_osc_pulses_arrive_at_the_send_to_address():
    received = queue.Queue()
    dispatcher = Dispatcher()
    dispatcher.map("/vjgan/*", lambda address, *args: received.put((address, *args)))
    listener = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    listener.timeout = 2
    with OscControl(LiveParams(), 0, host="127.0.0.1", send_to=f"127.0.0.1:{listener.server_address[1]}") as control:
        control.pulse("/vjgan/beat", 17)
        control.pulse("/vjgan/onset", np.float32(0.75))
        control.pulse("/vjgan/loop", 2)
        for _ in range(3):
            listener.handle_request()
    listener.server_close()
    assert [received.get_nowait() for _ in range(3)] == [("/vjgan/beat", 17), ("/vjgan/onset", 0.75), ("/vjgan/loop", 2)]


@pytest.mark.parametrize("send_to", ["localhost", "127.0.0.1:", "127.0.0.1:port", "127.0.0.1:70000", ":9001"])
def test_bad_send_to_is_one_live_error(send_to):
    with pytest.raises(LiveError, match=r"^--osc-send .*: give HOST:PORT with a port 1-65535, e\.g\. 127\.0\.0\.1:9001$"):
        OscControl(LiveParams(), 0, host="127.0.0.1", send_to=send_to)


def test_address_list_gives_every_address_with_its_range():
    def save(path):
        """save every parameter and mapping to a preset file"""

    with OscControl(LiveParams(n_runs=4), 0, host="127.0.0.1", handlers={"/vjgan/preset/save": save}) as control:
        lines = control.address_list()
    params = LiveParams().specs
    assert len(lines) == len(params) + 2
    assert "/vjgan/layout <single|grid|wall>: single, grid or wall" in lines
    assert any(line.startswith("/vjgan/run <int 0..3>:") for line in lines)
    assert any(line.startswith("/vjgan/new_seed <[1]>:") for line in lines)
    assert lines[-1] == "/vjgan/preset/save: save every parameter and mapping to a preset file"


# MIDI, over the JACK dummy server: a virtual output made here is the controller MidiControl listens to.

CONTROLLER = "vjgan-test-controller"


@pytest.fixture
def controller(jack_server):  # noqa: F811
    """A virtual MIDI output on the JACK server; tried for a while, as jackd may still be starting to take clients."""
    backend, deadline = mido.Backend("mido.backends.rtmidi", api="UNIX_JACK"), time.monotonic() + 10
    while True:
        try:
            port = backend.open_output(CONTROLLER, virtual=True)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield port
    port.close()


def cc(number: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", channel=channel, control=number, value=value)


def note(number: int, velocity: int, channel: int = 0, kind: str = "note_on") -> mido.Message:
    return mido.Message(kind, channel=channel, note=number, velocity=velocity)


SYNC = {"kind": "cc", "channel": 15, "number": 127, "param": "gain"}  # a control the tests wait on


def sync(params: LiveParams, controller, seconds: float = 2.0) -> bool:
    """Sends the SYNC control and waits for it to land; as MIDI arrives in order, all sent before it has too."""
    was_up = params.get("gain") > 0
    controller.send(cc(127, 0 if was_up else 127, channel=15))
    deadline = time.monotonic() + seconds
    while (params.get("gain") > 0) == was_up:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def send_and_sync(params: LiveParams, controller, *messages) -> None:
    for message in messages:
        controller.send(message)
    assert sync(params, controller), "the MIDI sync control never arrived"


def open_midi(params: LiveParams, controller, mappings=(), port=CONTROLLER, api="jack", on_message=None) -> MidiControl:
    """A MidiControl on the test controller (with SYNC mapped), once its JACK connection carries messages:
    JACK makes a new connection at its next cycle, and a message sent in the same instant can be lost. A last
    sync lands after any of the tries that were only late, so none is left to reach the test."""
    midi = MidiControl(params, port, [SYNC, *mappings], api=api, on_message=on_message)
    if not any(sync(params, controller, seconds=0.1) for _ in range(20)):
        midi.close()
        pytest.fail("the JACK connection never carried a message")
    send_and_sync(params, controller)
    return midi


def test_mapped_cc_moves_a_parameter_within_a_frame(controller):
    params = LiveParams()
    with open_midi(params, controller, [{"kind": "cc", "channel": 2, "number": 7, "param": "speed"}]) as midi:
        assert CONTROLLER in midi.port_name
        seconds = []
        for value in (127, 0, 64, 32, 100, 1, 90, 16, 126, 50):
            start = time.perf_counter()
            controller.send(cc(7, value, channel=2))
            wait_for_value(params, "speed", params.spec("speed").from_fraction(value / 127))
            seconds.append(time.perf_counter() - start)
    assert_within_a_frame(seconds, "MIDI CC to parameter")


def test_notes_fire_triggers_toggle_bools_and_set_values(controller):
    params = LiveParams()
    mappings = [
        {"kind": "note", "channel": 0, "number": 36, "param": "new_seed"},
        {"kind": "note", "channel": 0, "number": 37, "param": "freeze"},
        {"kind": "note", "channel": 0, "number": 38, "param": "layout"},
        {"kind": "cc", "channel": 0, "number": 20, "param": "tap"},
    ]
    lines = []
    with open_midi(params, controller, mappings, on_message=lines.append):
        send_and_sync(params, controller, note(36, 100), note(36, 0, kind="note_off"), note(36, 0), cc(20, 127), cc(20, 0))
        assert params.take_fired() == ["new_seed", "tap"]
        send_and_sync(params, controller, note(37, 1), note(37, 0, kind="note_off"))
        assert params.get("freeze") is True
        send_and_sync(params, controller, note(37, 127))
        assert params.get("freeze") is False
        send_and_sync(params, controller, note(38, 127), note(39, 127, channel=1), cc(7, 3))
        assert params.get("layout") == "wall"
    assert lines == []


def test_learn_binds_the_next_control_and_then_it_moves_the_parameter(controller):
    params = LiveParams()
    lines = []
    with open_midi(params, controller, on_message=lines.append) as midi:
        midi.learn("truncation")
        send_and_sync(params, controller, cc(21, 10, channel=3))
        assert params.get("truncation") == 1.0  # the teaching message moves nothing
        assert lines == ["midi: cc 21 on channel 3 -> truncation (learned)"]
        send_and_sync(params, controller, cc(21, 127, channel=3))
        assert params.get("truncation") == 3.0
        midi.learn("intensity")
        send_and_sync(params, controller, cc(21, 0, channel=3), cc(21, 127, channel=3))
        assert (params.get("truncation"), params.get("intensity")) == (3.0, 4.0)  # the control changed hands
        assert midi.mappings() == [SYNC, {"kind": "cc", "channel": 3, "number": 21, "param": "intensity"}]
        with pytest.raises(LiveError, match="unknown"):
            midi.learn("sped")


def test_mappings_round_trip_through_a_preset(controller, tmp_path):
    params = LiveParams()
    with open_midi(params, controller) as midi:
        midi.learn("bpm")
        send_and_sync(params, controller, note(60, 90, channel=9))
        save_preset(tmp_path / "set.toml", Preset(params.values(), midi.mappings()))
    preset = load_preset(tmp_path / "set.toml")
    assert preset.midi == [SYNC, {"kind": "note", "channel": 9, "number": 60, "param": "bpm"}]
    with open_midi(params, controller, preset.midi):
        send_and_sync(params, controller, note(60, 127, channel=9))
        assert params.get("bpm") == 400.0


def test_ports_are_listed_and_opened_by_index(controller, monkeypatch):
    monkeypatch.setenv("VJGAN_MIDI_API", "jack")
    names = list_midi_inputs()
    index = next(i for i, name in enumerate(names) if CONTROLLER in name)
    with open_midi(LiveParams(), controller, port=str(index), api=None) as midi:  # the API from VJGAN_MIDI_API
        assert midi.port_name == names[index]


def test_unknown_port_is_one_live_error_listing_the_inputs(controller):
    with pytest.raises(LiveError) as error:
        MidiControl(LiveParams(), "no-such-controller", api="jack")
    message = str(error.value)
    assert message.startswith("MIDI port 'no-such-controller': no such input (inputs: ")
    assert CONTROLLER in message and message.endswith("see `vjgan live --list-midi`")
    with pytest.raises(LiveError, match="no input with that index"):
        MidiControl(LiveParams(), 99, api="jack")


def test_a_midi_api_that_cannot_start_is_one_line(monkeypatch, capfd):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "vjgan-test-no-such-server")
    with pytest.raises(LiveError) as error:
        MidiControl(LiveParams(), CONTROLLER, api="jack")
    assert str(error.value).startswith("MIDI API jack cannot start (")
    assert str(error.value).endswith("); start a JACK server (jackd)")
    assert capfd.readouterr().err == ""  # JACK's own complaints are not printed around it
    with pytest.raises(LiveError, match="^MIDI API 'sndio': unknown; choose one of alsa, jack, coremidi, winmm"):
        list_midi_inputs("sndio")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"kind": "cc", "channel": 16, "number": 7, "param": "speed"}, "channel 16 is not a whole number 0-15"),
        ({"kind": "cc", "channel": 0, "number": 7.5, "param": "speed"}, "number 7.5 is not a whole number 0-127"),
        ({"kind": "pitch", "channel": 0, "number": 7, "param": "speed"}, "kind 'pitch' is not cc or note"),
        ({"kind": "cc", "channel": 0, "number": 7, "param": "sped"}, "param 'sped' is unknown"),
        ({"kind": "cc", "chanel": 0, "number": 7, "param": "speed"}, "missing channel; unknown key 'chanel'"),
        ("cc 7", "must be a table"),
    ],
)
def test_bad_mapping_entries_name_what_is_wrong(entry, problem):
    with pytest.raises(LiveError, match=f"^MIDI mapping .*{problem}"):
        check_mapping(entry)


@pytest.mark.parametrize(
    ("module", "start", "message"),
    [
        ("pythonosc", lambda: OscControl(LiveParams(), 0), "OSC control needs python-osc ("),
        ("mido", lambda: MidiControl(LiveParams(), 0), "MIDI needs mido ("),
        ("rtmidi", lambda: list_midi_inputs(), "MIDI needs python-rtmidi ("),
    ],
)
def test_a_missing_package_is_one_line_naming_the_install(module, start, message, monkeypatch):
    for name in [name for name in sys.modules if module in name.split(".")]:  # mido.backends.rtmidi too
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` finds for a package that is not installed
    with pytest.raises(LiveError) as error:
        start()
    assert str(error.value).startswith(message) and str(error.value).endswith('): pip install "vjgan[live]"')
    assert "\n" not in str(error.value)
