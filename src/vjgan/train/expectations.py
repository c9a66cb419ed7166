"""How long a run will take to reach good quality on this machine: the throughput it measures, times the
images the bench needed.

"Good quality" is where a bench run's SWD had plateaued: `vjgan eval` on the run (`vjgan.plateau`: the
mean over the pyramid levels and the finest level, each within 10% of its final level). That figure
depends on the model and on how it is trained, so it is only quoted for the arch, frame size, width, loss,
batch size and learning rate the bench has measured; any other run gets "no estimate" rather than a
guess. Where the bench's run was still sharpening when it ended, its length is quoted as a lower bound.
"""

from dataclasses import dataclass

from vjgan.train.config import TrainConfig


@dataclass(frozen=True)
class GoodQuality:
    images: int  # the slowest genre's images to good quality; not reached: the images its run trained
    reached: bool = True  # False: that run still sharpened when it ended, so `images` is a lower bound
    fastest_images: int | None = None  # the fastest genre's, where the genres differ


def measured_key(config: TrainConfig) -> tuple:
    """What a bench figure holds for: (arch, (height px, width px), model width, loss, batch size, lr)."""
    return (config.model.arch, config.model.size_px, config.model.width, config.loss, config.batch_size, config.lr)


# By `measured_key`: the plateau's "since" of `vjgan eval` on runs of
#   bench/quality.py --presets modern --width 16 --size S --images N --snapshots K --threads 1 --device cpu
# (the preset's other settings; bench/RESULTS.md, "Time to good quality"), over the genres measured;
# `modern2` at 96 px from its 8-minute runs of bench/quality_presets.py (snapshots every 8,000 images), with
# its settings of 7cf49de (half-strength colour, R1+R2), seeds 0 and 1: organic plateaued ~96,000 on seed 0,
# every other run still falling at 128,000-136,000 (the preset before plateaued at 48,000-72,000 on geometry,
# organic and typo); the key does not hold the policy or the penalty. `modern2` at 64 px (its small-frame
# settings, the bicubic zoom) from two such runs, seed 0: geometry plateaued ~72,000, typo still falling at 216,000.
IMAGES_TO_GOOD_QUALITY = {
    ("modern", (32, 32), 16, "hinge", 64, 2e-4): GoodQuality(384_000, reached=False, fastest_images=96_000),
    ("modern", (64, 64), 16, "hinge", 64, 2e-4): GoodQuality(256_000, reached=False),
    ("modern", (64, 64), 16, "relativistic", 32, 4e-4): GoodQuality(216_000, reached=False, fastest_images=72_000),
    ("modern", (96, 96), 16, "hinge", 64, 2e-4): GoodQuality(256_000, reached=False),
    ("modern", (96, 96), 16, "relativistic", 32, 4e-4): GoodQuality(136_000, reached=False, fastest_images=96_000),
}


def quality_eta_line(
    config: TrainConfig,
    images_seen: int,
    images_per_second: float,
    seconds_left: float | None = None,
    table: dict = IMAGES_TO_GOOD_QUALITY,
) -> str:
    """One line: at the measured rate, when the run reaches good quality and when this session ends: at
    the end of the image schedule, or at the time budget (`seconds_left` of `--minutes`) where that comes first."""
    height, width = config.model.size_px
    model = f"a `{config.model.arch}` net at {width}x{height}, width {config.model.width}"  # the arch, not the preset
    rate = f"at {images_per_second:.0f} img/s"
    schedule_seconds = max(0, config.images_total - images_seen) / images_per_second
    if seconds_left is not None and seconds_left < schedule_seconds:
        session_end_images = images_seen + round(seconds_left * images_per_second)
        schedule = f"time budget: {duration(seconds_left)} to go, ~{session_end_images:,} images at this rate"
        session_end = "this session's time budget"
    else:
        session_end_images = config.images_total
        schedule = f"schedule: {config.images_total:,} images, {duration(schedule_seconds)} to go"
        session_end = "this run's schedule"
    good = table.get(measured_key(config))
    if good is None:
        return f"{rate}: no estimate of the time to good quality for {model} ({schedule})"

    def until(images: int) -> str:
        return duration((images - images_seen) / images_per_second)

    images = f"{good.images:,} images" if good.reached else f"more than {good.images:,} images"
    when = f"~{until(good.images)}" if good.reached else f"over {until(good.images)}"
    if good.fastest_images is not None:
        images = f"{good.fastest_images:,} to {images} (by footage)"
        if images_seen < good.fastest_images:
            when = f"~{until(good.fastest_images)} to {when.removeprefix('~')}"
    if images_seen >= good.images:
        when = "already passed" if good.reached else "past where the bench's runs ended, still sharpening"
    else:
        when += " from now" + (f"; beyond {session_end}" if session_end_images < good.images else "")
    return f"{rate}, {model} reaches good quality after {images}: {when} ({schedule})"


def duration(seconds: float) -> str:
    """Seconds as a planner reads them: "45s", "12m", "3h 22m"."""
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minute:02d}m"
    return f"{minute}m" if minute else f"{second}s"
