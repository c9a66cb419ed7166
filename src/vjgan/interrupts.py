"""Ctrl-C and SIGTERM, acted on where the work can stop cleanly.

Python raises KeyboardInterrupt wherever the main thread happens to be, and there are places where it is
lost: raised inside a finaliser (a closing generator, a C callback into Python), it is printed as
"Exception ignored" and the command carries on. So long-running stages note the signal instead and stop at
their own safe points (between frames, after a checkpoint); a second Ctrl-C interrupts at once.
"""

import signal
import threading


class StopSignals:
    """While entered (in the main thread), Ctrl-C / SIGTERM set `requested` instead of interrupting."""

    def __init__(self):
        self.requested = False
        self._previous_handlers = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[number] = signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers.clear()

    def _on_signal(self, number, frame):
        self.requested = True
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)

    def stop_here(self) -> None:
        """Raise KeyboardInterrupt at this safe point if a stop was requested."""
        if self.requested:
            raise KeyboardInterrupt
