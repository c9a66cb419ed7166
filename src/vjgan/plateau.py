"""Whether a run's SWD curve has stopped falling: the rule `vjgan eval` applies, pure maths on (images, SWD).

Each point of the curve is the SWD of the fixed noise bank at one snapshot, and the points are noisy:
G keeps moving between snapshots, and on 64-frame banks consecutive points of a curve that has stopped
improving differ by 10-130% (organic at 32 px, bench/RESULTS.md, "Time to good quality"). So the rule compares *levels*
(medians, which one lucky or unlucky snapshot cannot move) over doublings of training, and asks the
drop to stand out of the curve's own scatter:

- the level now is the median SWD over the last half of the images seen, (N/2, N]; the level before,
  the median over the quarter before it, (N/4, N/2]; each part needs two evaluations (the untrained
  generator at 0 images never counts);
- SWD is still falling when the level dropped by more than 10% over that doubling *and* by more than
  twice the drop's standard error (the scatter of the points around their part's median, robustly
  estimated, as the standard error of a difference of medians);
- otherwise it has plateaued, since the first evaluation whose median with its neighbours is within
  10% of the level now.

A run is judged on its mean SWD over the pyramid levels *and* on its finest level alone (edges and fine
texture: sharpness): on the bench's 96 px curve the mean levels off while the finest level still falls
by ~40% per doubling, and telling a user that more training will not sharpen the pictures then would
be wrong. The run has plateaued when both have, since the later of the two. On flat curves with the
bench's scatter about one run in ten still reads as falling: the safe side, it says to train on.

That "since" on the bench's curves is the "images to good quality" `train.expectations` quotes.
"""

import math
import statistics
from dataclasses import asdict, dataclass, replace

TOLERANCE = 0.10  # a level within this fraction of another counts as no better
MIN_PART_EVALUATIONS = 2  # evaluations needed in each part before judging
NOISE_MARGIN_SE = 2.0  # a drop must exceed this many standard errors of itself
_MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation (normal scatter)
_MEDIAN_SE = 1.2533  # standard error of a median / that of a mean (normal scatter)

VERDICTS = ("plateaued", "falling", "unknown")


@dataclass(frozen=True)
class Plateau:
    verdict: str  # one of VERDICTS
    best_swd_x1e3: float  # the lowest SWD of the curve
    best_images_seen: int  # where it was measured
    level_swd_x1e3: float | None  # median SWD over the last half of the images seen (None: too few evaluations)
    drop_per_doubling: float | None  # 1 - level now / level over the quarter before (0.3: 30% lower)
    noise_margin: float | None  # the drop that counts as falling: TOLERANCE, or more where the points scatter
    since_images_seen: int | None  # plateaued: the first evaluation within TOLERANCE of the level
    finest_level_px: int | None = None  # a run's verdict: its finest pyramid level, judged on its own too
    finest_verdict: str | None = None
    finest_drop_per_doubling: float | None = None
    finest_noise_margin: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def judge_curve(images_seen: list[int], swd_x1e3: list[float]) -> Plateau:
    """The verdict on one curve; points need not be sorted. Raises ValueError for an uneven or empty curve."""
    if not images_seen or len(images_seen) != len(swd_x1e3):
        raise ValueError(f"a curve needs as many SWD values as image counts, at least one ({len(images_seen)}, {len(swd_x1e3)})")
    points = sorted(zip(images_seen, swd_x1e3))
    best_seen, best = min(points, key=lambda point: point[1])
    trained = [(seen, swd) for seen, swd in points if seen > 0]
    newest = trained[-1][0] if trained else 0
    now = [swd for seen, swd in trained if seen > newest / 2]
    before = [swd for seen, swd in trained if newest / 4 < seen <= newest / 2]
    if len(now) < MIN_PART_EVALUATIONS or len(before) < MIN_PART_EVALUATIONS:
        return Plateau("unknown", best, best_seen, None, None, None, None)
    level, level_before = statistics.median(now), statistics.median(before)
    drop = 1 - level / level_before
    margin = max(TOLERANCE, 1 - math.exp(-NOISE_MARGIN_SE * _log_median_difference_se(now, before)))
    if drop > margin:
        return Plateau("falling", best, best_seen, level, drop, margin, None)
    swds = [swd for _, swd in trained]
    since = next(
        seen for i, (seen, _) in enumerate(trained) if statistics.median(swds[max(0, i - 1) : i + 2]) <= level * (1 + TOLERANCE)
    )
    return Plateau("plateaued", best, best_seen, level, drop, margin, since)


def judge_run(images_seen: list[int], swd_x1e3: list[float], finest_x1e3: list[float], finest_level_px: int) -> Plateau:
    """The verdict on a run: its mean SWD curve and its finest level's curve must both have plateaued."""
    mean, finest = judge_curve(images_seen, swd_x1e3), judge_curve(images_seen, finest_x1e3)
    verdict, since = mean.verdict, mean.since_images_seen
    if verdict == "plateaued" and finest.verdict == "falling":
        verdict, since = "falling", None
    elif verdict == "plateaued":
        since = max(since, finest.since_images_seen)
    return replace(
        mean,
        verdict=verdict,
        since_images_seen=since,
        finest_level_px=finest_level_px,
        finest_verdict=finest.verdict,
        finest_drop_per_doubling=finest.drop_per_doubling,
        finest_noise_margin=finest.noise_margin,
    )


def _log_median_difference_se(*parts: list[float]) -> float:
    """Standard error of the difference of the parts' log-medians, from the pooled scatter of log SWD around them."""
    deviations = [abs(math.log(swd / statistics.median(part))) for part in parts for swd in part]
    sigma = _MAD_TO_SIGMA * statistics.median(deviations)
    return _MEDIAN_SE * sigma * math.sqrt(sum(1 / len(part) for part in parts))


def plateau_summary(plateau: Plateau) -> str:
    """The verdict in a few words, for a table row: "plateaued since ~30,000 images"."""
    if plateau.verdict == "plateaued":
        return f"plateaued since ~{plateau.since_images_seen:,} images"
    if plateau.verdict == "falling" and plateau.drop_per_doubling > plateau.noise_margin:
        return f"falling: ~{plateau.drop_per_doubling:.0%} lower per doubling of the images"
    if plateau.verdict == "falling":  # the mean has levelled off, the finest level has not
        return (
            f"falling at {plateau.finest_level_px} px: ~{plateau.finest_drop_per_doubling:.0%} lower per doubling of the images"
        )
    return "too few snapshots to tell"


def plateau_line(plateau: Plateau, hint: str) -> str:
    """The verdict as one sentence; `hint` says what to try when more training will not help."""
    summary = plateau_summary(plateau)
    best = f"best {plateau.best_swd_x1e3:.1f} at {plateau.best_images_seen:,} images"
    if plateau.verdict == "plateaued":
        return (
            f"SWD has {summary} (median of the last half {plateau.level_swd_x1e3:.1f}, {best}): "
            f"more training is unlikely to sharpen it; {hint}"
        )
    if plateau.verdict == "falling":
        return f"SWD still {summary} ({best}): more training should help"
    return (
        f"{summary} whether SWD has plateaued ({best}): it takes about 6 evaluated snapshots after the untrained one; "
        "train longer, or evaluate with --every 1"
    )
