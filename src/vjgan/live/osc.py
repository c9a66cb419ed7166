"""OSC control: every live parameter addressable over UDP, and pulses sent out on beats, onsets and loops.

Addresses received on `--osc-port` (`vjgan live --list-params` prints each with its range):

    /vjgan/<param> <value>           set a parameter: a float, an int, a bool (T/F, 0/1, "on"/"off"), a choice by
                                     name ("grid") or index; a value past the range is clamped, never refused
    /vjgan/<trigger> [<on>]          fire a trigger (new_seed, tap, next_run, prev_run): with no argument, or
                                     with one that is true (a button's 1 fires, its 0 on release does not)
    /vjgan/<param>/fraction <0..1>   set from a controller position spread across the parameter's range
    /vjgan/preset/load <path>, /vjgan/preset/save <path>, /vjgan/midi/learn <param>
                                     the app's own addresses (handed in as `handlers`)

OSC address patterns work (`/vjgan/fx_*/fraction 0` zeroes every effect). Bundles are applied on arrival:
their time tags are ignored, as waiting for one would hold every message behind it.

Sent to `--osc-send HOST:PORT` (so lights or another VJ tool can follow the music):

    /vjgan/beat <n>          on each beat, n counting beats since the start
    /vjgan/onset <strength>  on each onset heard, strength 0..1
    /vjgan/loop <n>          when a loop comes round, n counting loops

The server is python-osc's BlockingOSCUDPServer on one daemon thread: messages are handled in arrival
order as soon as they land (a fraction of a millisecond), where the threading server's thread per packet
costs tens of milliseconds under load. A bad message (unknown address, text for a number, bytes that are
not OSC) is one line through `on_message` and the server keeps serving: a performance must not stop for
a controller's mistake.
"""

import difflib
import errno
import sys
import threading
from collections import deque
from collections.abc import Callable
from functools import partial

from vjgan.errors import LiveError, VjganError
from vjgan.live import import_package
from vjgan.live.params import LiveParams, Param

PREFIX = "/vjgan/"
RECENT_ADDRESSES = 8  # distinct addresses kept for the status overlay and an OSC learn
POLL_SECONDS = 0.1  # how often the server looks for a close request: the longest `close` waits


OSC_MODULES = ("dispatcher", "osc_packet", "osc_server", "udp_client")


def _need_python_osc():
    return tuple(import_package(f"pythonosc.{name}", "OSC control", "python-osc") for name in OSC_MODULES)


def _printable(line: str) -> str:
    """`line` with control characters escaped, so an address holding a newline still reports on one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in line)


def _value_range(spec: Param) -> str:
    if spec.kind == "choice":
        return "|".join(spec.choices)
    if spec.kind == "bool":
        return "0|1"
    if spec.kind == "trigger":
        return "[1]"
    return f"{spec.kind} {spec.low:g}..{spec.high:g}"


def address_list(params: LiveParams, handlers: dict[str, Callable] | None = None) -> list[str]:
    """Every address received, one line each with its range and meaning (`vjgan live --list-params`); an app
    address is described by the first line of its handler's docstring."""
    lines = [f"{PREFIX}{name} <{_value_range(spec)}>: {spec.doc}" for name, spec in params.specs.items()]
    lines.append(f"{PREFIX}<param>/fraction <0..1>: any parameter above, from a controller position across its range")
    for address, handler in (handlers or {}).items():
        doc = (handler.__doc__ or "").strip().split("\n")[0]
        lines.append(f"{address}: {doc}" if doc else address)
    return lines


def parse_send_to(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9001` for IPv6) as (host, port)."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LiveError(f"--osc-send {text!r}: give HOST:PORT with a port 1-65535, e.g. 127.0.0.1:9001")
    return host, int(port)


class OscControl:
    """Serves OSC on `host:port` into `params` until closed; `pulse` sends out to `send_to` when given.

    `port` 0 takes a free port (see `.port`). `handlers` maps extra addresses to callables taking the
    message's arguments (the first line of a handler's docstring describes it in `address_list`); one raising
    a VjganError (a preset that cannot be read or written) is reported like any bad message.
    """

    def __init__(
        self,
        params: LiveParams,
        port: int,
        host: str = "0.0.0.0",
        send_to: str | None = None,
        on_message: Callable[[str], None] | None = None,
        handlers: dict[str, Callable] | None = None,
    ):
        dispatcher, self._osc_packet, osc_server, udp_client = _need_python_osc()
        self.params = params
        self.handlers = dict(handlers or {})
        self._on_message = on_message or partial(print, file=sys.stderr)
        self._recent: deque[str] = deque(maxlen=RECENT_ADDRESSES)
        self._recent_lock = threading.Lock()
        self._dispatcher = dispatcher.Dispatcher()
        for name in params.specs:
            self._dispatcher.map(f"{PREFIX}{name}", partial(self._set, name))
            self._dispatcher.map(f"{PREFIX}{name}/fraction", partial(self._set_fraction, name))
        for address, handler in self.handlers.items():
            self._dispatcher.map(address, lambda _address, *args, handler=handler: handler(*args))
        send_address = parse_send_to(send_to) if send_to is not None else None
        self._server = _listen(osc_server.BlockingOSCUDPServer, host, port, self)
        self._client = None
        if send_address is not None:
            try:
                self._client = udp_client.SimpleUDPClient(*send_address)
            except OSError as error:
                self._server.server_close()
                raise LiveError(f"--osc-send {send_to}: cannot send there ({error})") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,), name="vjgan-osc", daemon=True)
        self._thread.start()

    def pulse(self, address: str, *args) -> None:
        """Sends `address args` to `send_to` (nothing without one); a failed send is reported, not raised,
        as the caller is the frame loop. numpy scalars (an onset strength) go as the Python numbers they hold."""
        if self._client is None:
            return
        try:
            self._client.send_message(address, [arg.item() if hasattr(arg, "item") else arg for arg in args])
        except (OSError, ValueError) as error:
            self._report(f"osc send {address}: {error}")

    def last_addresses(self) -> list[str]:
        """The last distinct addresses received, newest last, known or not (what a controller sends)."""
        with self._recent_lock:
            return list(self._recent)

    def address_list(self) -> list[str]:
        return address_list(self.params, self.handlers)

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._client is not None:
            self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _packet(self, data: bytes, sender: tuple) -> None:
        try:
            packet = self._osc_packet.OscPacket(data)
        except (self._osc_packet.ParseError, ValueError):
            damaged = data.startswith((b"/", b"#bundle"))
            what = "a damaged OSC packet (cut short, or a bad type tag)" if damaged else "not OSC"
            self._report(f"osc: {len(data)} bytes from {sender[0]}:{sender[1]}: {what}")
            return
        for timed in packet.messages:
            self._message(timed.message, sender)

    def _message(self, message, sender: tuple) -> None:
        address = message.address
        with self._recent_lock:
            if address in self._recent:
                self._recent.remove(address)
            self._recent.append(address)
        try:
            handlers = list(self._dispatcher.handlers_for_address(address))
            if not handlers:
                self._unknown(address)
            for handler in handlers:
                handler.invoke(sender, message)
        except Exception as error:  # the server thread outlives any bad message or handler bug, each one line
            detail = str(error) if isinstance(error, VjganError) else f"{type(error).__name__}: {error}"
            self._report(f"osc: {address}: {detail}")

    def _set(self, name: str, _address: str, *args) -> None:
        if len(args) > 1:
            raise LiveError(f"takes one value, got {len(args)}")
        if not args and self.params.specs[name].kind != "trigger":
            raise LiveError(f"needs a value <{_value_range(self.params.specs[name])}>")
        self.params.set(name, args[0] if args else None)

    def _set_fraction(self, name: str, _address: str, *args) -> None:
        fraction = args[0] if len(args) == 1 else None
        if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
            raise LiveError(f"takes one number 0..1, got {' '.join(map(repr, args)) or 'none'}")
        self.params.set_fraction(name, fraction)

    def _unknown(self, address: str) -> None:
        name, _, tail = address.removeprefix(PREFIX).partition("/")
        if address.startswith(PREFIX) and tail in ("", "fraction") and name not in self.params.specs:
            close = difflib.get_close_matches(name, self.params.specs, n=1)
            raise LiveError(f"unknown parameter {name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise LiveError("unknown address; see `vjgan live --list-params`")

    def _report(self, line: str) -> None:
        self._on_message(_printable(line))


def _listen(base: type, host: str, port: int, control: OscControl):
    """python-osc's blocking server (a subclass made here, as python-osc is imported lazily) bound to
    `host:port`, taking every datagram to `control._packet`: the base class's own check drops non-OSC
    datagrams unseen, where a performer needs to hear of them."""

    class Server(base):
        def verify_request(self, request, client_address) -> bool:
            return True

        def finish_request(self, request, client_address) -> None:
            control._packet(request[0], client_address)

    try:
        return Server((host, port), control._dispatcher)
    except OSError as error:
        taken = error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None))
        reason = "taken by another program" if taken else f"cannot listen ({error.strerror or error})"
        raise LiveError(f"OSC port {port} on {host}: {reason}; choose another with --osc-port") from None
    except OverflowError:
        raise LiveError(f"OSC port {port}: not a port (0-65535); choose another with --osc-port") from None
