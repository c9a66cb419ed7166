"""Video files in, fitted RGB frames out: the one place vjgan decodes footage.

Decoding is threaded by FFmpeg, and swscale converts any pixel format (10-bit, 4:4:4, palette GIFs)
straight to RGB at the small target size, so a 4K frame never exists as full-size RGB in Python.
Frames are resampled to the store's rate by presentation time the way `ffmpeg -r` does it, so a
60 fps source gives every second frame, a 24 fps source repeats some, and a variable-rate source
is sampled on an even clock. Frames are converted only when they are kept.

Damaged files give what they can: a file cut short keeps the frames decoded before the cut and says
it was truncated; damage in the middle (unreadable packets, a demuxer that fails or stops early on
bad data) is skipped and the frames after it are kept, with a note of how many packets and seconds
were lost. Files that give nothing raise `FootageError` naming the file and the reason.
"""

import math
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from vjgan.errors import FootageError
from vjgan.footage.geometry import FramePlan, fit, plan_frame

# Box filtering for big downscales, with rounding and chroma handled at full precision: within
# ~1 level of an exact area average at ~0.6 ms per 1080p frame (plain bilinear is 2-4 levels off).
INTERPOLATION = Interpolation.AREA | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
FALLBACK_FRAME_SECONDS = Fraction(1, 25)  # a frame's length when the file says nothing (FFmpeg's default rate)
# Demux passes in a row that give no packet before a damaged file is taken to end there: each pass after
# a failure starts where the demuxer stands (past the bad sample or cluster), so this bounds the work on
# a file that fails at every step (one cut short fails once per missing sample), and the loop always ends.
MAX_FRUITLESS_DEMUX_PASSES = 16
GAP_FRAMES = 1.5  # frames' worth of time between one frame's end and the next frame: video is missing there

T = TypeVar("T")


@dataclass(frozen=True)
class VideoInfo:
    """What a source is, as far as the container and its first frame tell."""

    fps: float  # source frames per second (average rate; 0.0 when the file does not say)
    width: int  # coded pixels, before rotation
    height: int
    frames_estimate: int  # 0 when unknown
    duration_seconds: float  # the video stream's length per the container; 0.0 when unknown
    rotation_degrees: int  # counter-clockwise display rotation, 0/90/180/270
    sample_aspect: float  # displayed pixel width / height (1.0 for square pixels)
    pix_fmt: str
    codec: str
    container: str

    @property
    def display_size_wh(self) -> tuple[int, int]:
        """Size as shown: rotation and non-square pixels applied."""
        width = round(self.width * self.sample_aspect)
        return (self.height, width) if self.rotation_degrees % 180 else (width, self.height)


@dataclass(frozen=True)
class Ending:
    """How a pass over a video ended: whole, or cut short (frames before the damage are kept)."""

    truncated: bool
    seconds_decoded: float  # from the first frame to the end of the last
    seconds_expected: float  # what the container promised; 0.0 when it does not say
    note: str | None  # why it is truncated or damaged, for the user; None when the file was sound


def resample(timed: Iterable[tuple[Fraction, Fraction, T]], fps: Fraction) -> Iterator[tuple[T, int]]:
    """(item, repeats) so that output frame k at k/fps shows the latest input whose time rounds to <= k.

    `timed` gives (presentation seconds, duration seconds, item) in decode order. Like ffmpeg's fps
    filter (rounding to nearest): times count from the first input, inputs landing on the same output
    slot keep the later one, and the last input lasts its duration (at least one frame is always given).
    """
    next_slot, held, emitted = 0, None, 0
    origin = None
    for time_seconds, duration_seconds, item in timed:
        if origin is None:
            origin = time_seconds
        slot = math.floor((time_seconds - origin) * fps + Fraction(1, 2))
        if held is not None and slot > next_slot:
            yield held[2], slot - next_slot
            emitted += slot - next_slot
            next_slot = slot
        held = (time_seconds, duration_seconds, item)
    if held is not None:
        end_slot = math.floor((held[0] + held[1] - origin) * fps + Fraction(1, 2))
        repeats = end_slot - next_slot if emitted else max(1, end_slot - next_slot)
        if repeats > 0:
            yield held[2], repeats


def check_source(path: Path) -> None:
    """Refuse, by file metadata alone, what cannot be a video: missing, a folder, a pipe, empty."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise FootageError(f"{path}: no such file (or a broken link)") from None
    except OSError as error:
        raise unreadable(path, error) from None
    if stat.S_ISDIR(status.st_mode):
        raise FootageError(f"{path}: a directory, not a video file")
    if not stat.S_ISREG(status.st_mode):
        kind = "a named pipe" if stat.S_ISFIFO(status.st_mode) else "a device or socket"
        raise FootageError(f"{path}: not a regular file ({kind})")
    if status.st_size == 0:
        raise FootageError(f"{path}: empty file (0 bytes)")


def unreadable(path: Path, error: OSError) -> FootageError:
    """The user-facing error for an OS failure reading `path`."""
    if isinstance(error, PermissionError):
        return FootageError(f"{path}: permission denied; make it readable (chmod +r) or leave it out")
    return FootageError(f"{path}: cannot be read ({error.strerror or error})")


class Video:
    """An opened source: `info`, then one pass of `frames(...)`, then `ending` says how it ended."""

    def __init__(self, path: Path, threads: int = 0):
        self.path = Path(path)
        check_source(self.path)
        self._container = open_container(self.path)
        try:
            self._stream = video_stream(self._container, self.path, threads)
            self._damaged_packets = 0  # packets the decoder refused (skipped)
            self._unreadable_stretches = 0  # times the demuxer failed or stopped before the end (skipped ahead)
            self._demux_error: str | None = None  # the last demuxer failure, when nothing could be read after it
            self._gap_seconds = Fraction(0)  # time missing between decoded frames (lost to damage)
            self._decoded_frames = self._decoded()
            self._first = next(self._decoded_frames, None)
            if self._first is None:
                raise FootageError(f"{self.path}: no frames could be decoded{self._damage_detail()}")
            self.info = self._describe(self._first)
        except BaseException:
            self._container.close()
            raise
        self.ending: Ending | None = None
        self._first_seconds: Fraction | None = None
        self._end_seconds: Fraction | None = None
        self._reformatter = VideoReformatter()
        self._plans: dict[tuple[int, int], FramePlan] = {}

    def __enter__(self) -> "Video":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, fps: float | None, size_px: int | tuple[int, int], crop: str) -> Iterator[np.ndarray]:
        """Read-only (height, width, 3) uint8 frames of `size_px` (height, width; N: N x N) at `fps`
        (None: every decoded frame once).

        A repeated frame is the same array yielded again; copy it to keep it. Once exhausted,
        `self.ending` says whether the file was whole.
        """
        timed = self._timed()
        if fps is None:
            for _, _, frame in timed:
                yield self._fitted(frame, size_px, crop)
        else:
            for frame, repeats in resample(timed, Fraction(fps).limit_denominator(1_000_000)):
                fitted = self._fitted(frame, size_px, crop)
                for _ in range(repeats):
                    yield fitted
        self.ending = self._ending()

    # -- decoding ---------------------------------------------------------------------------------

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Frames in presentation order; damaged packets are skipped, and so is damaged container data.

        PyAV's packet generator ends at the demuxer's first failure, and some demuxers take bad data
        for the end of the file (an mp4 sample placed past its end). So a pass that ends before the
        container's stated end is followed by another from where the demuxer stands, and when that
        brings nothing new, by seeks to the next keyframe after the last packet read, each further
        ahead (1 tick, then 1, 3, 7, ... packet durations: past a bad sample the seek may land on).
        Passes that bring nothing new are bounded (MAX_FRUITLESS_DEMUX_PASSES), so a damaged file always ends.
        The demuxer's end-of-stream (empty) packets are passed over: the decoder is drained at the end.
        """
        codec = self._stream.codec_context
        last_pts, last_duration, fruitless_passes, seeks, resumed = None, 1, 0, 0, False
        while fruitless_passes < MAX_FRUITLESS_DEMUX_PASSES:
            if seeks:
                yield from self._drain()
                codec.flush_buffers()
                try:
                    self._container.seek(
                        last_pts + 1 + last_duration * (2 ** (seeks - 1) - 1), backward=False, stream=self._stream
                    )
                except (av.FFmpegError, OSError):
                    break
            progress, ended_cleanly = False, False
            packets = self._container.demux(self._stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    ended_cleanly = True
                    break
                except (av.FFmpegError, OSError) as error:
                    self._demux_error = getattr(error, "strerror", None) or str(error)
                    break
                if packet.size == 0 or (seeks and packet.pts is not None and packet.pts <= last_pts):
                    continue  # an end-of-stream marker, or a packet read before the seek
                progress, self._demux_error = True, None
                last_pts = packet.pts if packet.pts is not None else last_pts
                last_duration = packet.duration or last_duration
                try:
                    yield from packet.decode()
                except av.FFmpegError:
                    self._damaged_packets += 1
            self._unreadable_stretches += progress and resumed  # frames came after the damage
            if ended_cleanly and not self._ends_early(last_pts):
                break
            resumed = True
            fruitless_passes = 0 if progress else fruitless_passes + 1
            seeks = 0 if progress or last_pts is None else seeks + 1
        yield from self._drain()

    def _drain(self) -> Iterator[av.VideoFrame]:
        """The frames still inside the decoder (threads hold a few)."""
        try:
            yield from self._stream.codec_context.decode(None)
        except av.FFmpegError:
            self._damaged_packets += 1

    def _ends_early(self, last_pts: int | None) -> bool:
        """Whether the packets read stop well before the end the container states (so more may follow)."""
        expected = expected_seconds(self._container, self._stream)
        time_base = self._stream.time_base
        if last_pts is None or not expected or not time_base:
            return False
        start = self._stream.start_time or 0
        return float((last_pts - start) * time_base) < expected - max(0.5, 0.02 * expected)

    def _timed(self) -> Iterator[tuple[Fraction, Fraction, av.VideoFrame]]:
        """(presentation seconds, duration seconds, frame), filling in missing timestamps."""
        default_seconds = 1 / Fraction(self.info.fps).limit_denominator(1001) if self.info.fps > 0 else FALLBACK_FRAME_SECONDS
        previous_end = None
        frames, self._first = _prepend(self._first, self._decoded_frames), None
        for frame in frames:
            time_base = frame.time_base or self._stream.time_base
            if frame.pts is not None and time_base:
                time_seconds = frame.pts * time_base
            else:
                time_seconds = previous_end if previous_end is not None else Fraction(0)
            duration_seconds = frame.duration * time_base if frame.duration and time_base else default_seconds
            if previous_end is not None and time_seconds - previous_end > GAP_FRAMES * duration_seconds:
                self._gap_seconds += time_seconds - previous_end  # frames lost to damage (or a long hold)
            previous_end = time_seconds + duration_seconds
            if self._first_seconds is None:
                self._first_seconds = time_seconds
            self._end_seconds = max(self._end_seconds or previous_end, previous_end)
            yield time_seconds, duration_seconds, frame

    def _fitted(self, frame: av.VideoFrame, size_px: int | tuple[int, int], crop: str) -> np.ndarray:
        plan = self._plans.get((frame.width, frame.height))
        if plan is None:  # planned per geometry: a stream may change resolution midway
            plan = plan_frame((frame.width, frame.height), size_px, crop, self.info.rotation_degrees, self.info.sample_aspect)
            self._plans[(frame.width, frame.height)] = plan
        width, height = plan.scale_wh
        scaled = self._reformatter.reformat(
            frame,
            width=width,
            height=height,
            format="rgb24",
            interpolation=INTERPOLATION,
            src_color_range=frame.color_range,
            dst_color_range="JPEG",
        ).to_ndarray()  # (height, width, 3) uint8 in the coded orientation
        fitted = fit(plan, scaled)  # (height, width, 3)
        fitted.flags.writeable = False
        return fitted

    # -- description --------------------------------------------------------------------------------

    def _describe(self, first: av.VideoFrame) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = expected_seconds(self._container, stream)
        sample_aspect = stream.sample_aspect_ratio
        return VideoInfo(
            fps=fps,
            width=first.width,
            height=first.height,
            frames_estimate=stream.frames or round(duration * fps),
            duration_seconds=duration,
            rotation_degrees=round(first.rotation / 90) * 90 % 360,
            sample_aspect=float(sample_aspect) if sample_aspect and sample_aspect > 0 else 1.0,
            pix_fmt=first.format.name,
            codec=stream.codec_context.name,
            container=self._container.format.name,
        )

    def _ending(self) -> Ending:
        expected = self.info.duration_seconds
        decoded = float(self._end_seconds - self._first_seconds) if self._end_seconds is not None else 0.0
        start = self._stream.start_time
        if start is not None and self._stream.time_base and self._first_seconds is not None:
            decoded += float(self._first_seconds - start * self._stream.time_base)  # time before the first frame
        frame_seconds = 1 / self.info.fps if self.info.fps > 0 else float(FALLBACK_FRAME_SECONDS)
        tolerance_seconds = max(0.5, 0.02 * expected, 2 * frame_seconds)  # container rounding, a last frame's length
        short = expected > 0 and decoded < expected - tolerance_seconds
        truncated = short or self._demux_error is not None  # the demuxer failed for good before the end
        gap_seconds = float(self._gap_seconds)
        skipped = []
        if self._damaged_packets:
            skipped.append(f"{self._damaged_packets} damaged packet(s)")
        if self._unreadable_stretches:
            skipped.append(f"{self._unreadable_stretches} unreadable stretch(es) of the file")
        if gap_seconds > (frame_seconds if skipped else tolerance_seconds):
            skipped.append(f"{gap_seconds:.2f} s of video")
        note = None
        if truncated:
            of_expected = f" of {expected:.2f} s" if expected > 0 else ""
            note = f"truncated: kept the frames decoded before the damage ({decoded - gap_seconds:.2f} s{of_expected})"
            note += f"; skipped {' and '.join(skipped)} on the way" if skipped else ""
        elif skipped:
            note = f"damaged: skipped {' and '.join(skipped)}; kept the frames before and after the damage"
        return Ending(truncated, decoded, expected, note)

    def _damage_detail(self) -> str:
        if self._demux_error:
            return f" (damaged data: {self._demux_error})"
        return f" ({self._damaged_packets} damaged packet(s))" if self._damaged_packets else ""


def _prepend(first: T | None, rest: Iterator[T]) -> Iterator[T]:
    if first is not None:
        yield first
    yield from rest


def open_container(path: Path) -> av.container.InputContainer:
    """Open `path` with FFmpeg, or say in one line why it is not a video."""
    try:
        container = av.open(ffmpeg_path(path), metadata_errors="replace")
    except PermissionError as error:
        raise unreadable(path, error) from None
    except (av.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        hint = "; a recording cut off before its index (moov atom) was written cannot be read" if is_mp4(path) else ""
        raise FootageError(f"{path}: not a video FFmpeg can read ({reason}){hint}") from None
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        container.close()
        raise FootageError(f"{path}: a still image, not a video; vjgan ingests video files")
    return container


def ffmpeg_path(path: Path) -> str:
    """`path` as FFmpeg must be given it: a relative name such as `a:b.mp4` would be read as protocol `a:`."""
    return str(path) if path.is_absolute() else os.path.join(".", path)


def is_mp4(path: Path) -> bool:
    """Whether `path` starts like an MP4/MOV file (an `ftyp` box)."""
    try:
        with open(path, "rb") as file:
            return file.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def video_stream(container: av.container.InputContainer, path: Path, threads: int = 0) -> av.video.stream.VideoStream:
    """The first real video stream (cover art is not footage), set up for decoding on `threads` threads
    (0: as many as FFmpeg sees cores; several files decoded at once share the cores out instead)."""
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        audio_only = " (audio only)" if container.streams.audio else ""
        raise FootageError(f"{path}: no video stream{audio_only}")
    stream = streams[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return stream


def expected_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The video stream's length as the container states it (0.0 when unknown).

    Per-stream durations first (mp4/mov, ts); Matroska keeps them in a DURATION tag; the container's
    overall duration is used only when the video is its only stream, since audio may run longer.
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        pass
    if len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return 0.0


def open_video(path: Path, threads: int = 0) -> Video:
    """An opened source (use as a context manager) decoded on `threads` threads (0: FFmpeg picks); raises
    `FootageError` for files that are no video."""
    return Video(Path(path), threads)


def iter_frames(path: Path, fps: float | None, size_px: int | tuple[int, int], crop: str) -> Iterator[np.ndarray]:
    """(height, width, 3) uint8 frames of `path` at `fps`, fitted by `crop` (see `Video.frames`)."""
    with open_video(path) as video:
        yield from video.frames(fps, size_px, crop)
