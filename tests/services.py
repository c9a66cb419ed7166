"""Real services the live-mode tests talk to, started once per test process (each xdist worker its own):
an X server (Xvfb, Mesa's llvmpipe OpenGL), a PulseAudio server with a null sink (a sound card with no
hardware: what is played into it can be recorded from its monitor), a JACK server on the dummy backend
(MIDI ports without /dev/snd) and an NDI configuration that keeps NDI on loopback.

Each fixture points the environment of this process (and so of child processes) at its service. A
missing program fails the test with the apt package to install (.ci/run installs them all).
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

APT_PACKAGES = "xvfb libportaudio2 pulseaudio libasound2-plugins jackd2"


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """The environment variables `values` set for the block, then restored (or removed) as they were."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def need_program(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: apt-get install {package} (the live tests need {APT_PACKAGES})")
    return path


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A 1920x1080 X display of our own (Xvfb picks a free number); DISPLAY points at it."""
    xvfb = need_program("Xvfb", "xvfb")
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=[write_end],
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as display_number:
        display = ":" + display_number.readline().strip()
    if display == ":":
        stop(process)
        pytest.fail("Xvfb did not start")
    with environment(DISPLAY=display):
        yield display
    stop(process)


NULL_SINK = "vjgan_null"


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory) -> Iterator[str]:
    """A PulseAudio server of our own whose default sink is a null sink `NULL_SINK` (and default source its
    monitor, so what is played can be recorded); PULSE_SERVER points at it. PortAudio reaches it through
    ALSA's `pulse` device (libasound2-plugins). Returns the server address."""
    pulseaudio = need_program("pulseaudio", "pulseaudio")
    runtime = tmp_path_factory.mktemp("pulse")
    socket = runtime / "native"
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "HOME": str(runtime), "XDG_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen(
        [
            pulseaudio,
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=no",
            "-L",
            f"module-native-protocol-unix socket={socket} auth-anonymous=1",
            "-L",
            f"module-null-sink sink_name={NULL_SINK}",
            "-L",
            "module-always-sink",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    server = f"unix:{socket}"
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail("pulseaudio did not start")
        time.sleep(0.05)
    with environment(PULSE_SERVER=server, PULSE_SINK=NULL_SINK, PULSE_SOURCE=f"{NULL_SINK}.monitor"):
        yield server
    stop(process)


@pytest.fixture(scope="module")
def jack_server() -> Iterator[str]:
    """A JACK server on the dummy backend, named for this process; JACK_DEFAULT_SERVER points at it, so
    rtmidi's JACK API (mido backend `mido.backends.rtmidi/UNIX_JACK`) makes its MIDI ports there. Per test
    module: the dummy driver wakes every 5 ms (a MIDI message waits at most that), costing a third of a core."""
    jackd = need_program("jackd", "jackd2")
    name = f"vjgan-test-{os.getpid()}"
    process = subprocess.Popen(
        [jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with environment(JACK_DEFAULT_SERVER=name):
        deadline = time.monotonic() + 10
        started = False
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if "starting in non-realtime mode" in line or "self-connect-mode" in line:
                started = True
                break
        if not started:
            stop(process)
            pytest.fail("jackd did not start")
        wait_for_jack_clients(deadline)
        yield name
    stop(process)


def wait_for_jack_clients(deadline: float) -> None:
    """jackd prints that it started a little before it accepts clients: open one until it is let in."""
    import mido

    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    while True:
        try:
            backend.get_input_names()
            return
        except Exception:
            if time.monotonic() > deadline:
                pytest.fail("jackd does not accept clients")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def ndi_loopback(tmp_path_factory) -> Iterator[Path]:
    """NDI kept on 127.0.0.1 (no mDNS on CI): NDI_CONFIG_DIR names a folder holding ndi-config.v1.json."""
    folder = tmp_path_factory.mktemp("ndi")
    (folder / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    with environment(NDI_CONFIG_DIR=str(folder)):
        yield folder
