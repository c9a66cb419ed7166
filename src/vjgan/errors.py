"""Errors a user can cause.

Every such error is a `VjganError`: the CLI prints its message on one line and exits non-zero,
with no traceback. Messages name the file concerned and the reason (and the fix, where one exists),
e.g. ``"clips/a.mp4: not a video (no video stream)"``.
"""


class VjganError(Exception):
    """A problem the user can fix; the message is shown as is."""


class FootageError(VjganError):
    """A source video that cannot be used (missing, unreadable, no video stream, ...)."""


class StoreError(VjganError):
    """A frame store that is missing, empty, damaged or made with other settings."""


class RunError(VjganError):
    """A run directory that is missing, incompatible, unwritable or lacks what is asked of it."""


class AudioError(VjganError):
    """An audio track that cannot be read or analysed."""


class RenderError(VjganError):
    """A render request that cannot be carried out (bad size, codec, output path, ...)."""


class SizeError(RenderError):
    """A frame size that cannot be read or produced (`vjgan.sizes`); a RenderError, as clip sizes are its first use."""


class OutputError(VjganError):
    """A file vjgan writes cannot be written (disk full, file-size limit, permissions, I/O error)."""


class LiveError(VjganError):
    """A live-mode request that cannot be met: an unknown audio device or MIDI port, a taken OSC port, a missing package."""
