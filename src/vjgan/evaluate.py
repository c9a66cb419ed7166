"""Quality of a run without any downloaded network: sliced Wasserstein distance and diversity.

SWD (Karras et al. 2018, progressive GANs) compares the distributions of 7x7 patches taken from
each level of a Laplacian pyramid of real and generated frames: fine levels judge texture and
edges, the coarsest judges colour and layout. Each level's patches become 147-value descriptors,
and the distance between the two descriptor clouds is estimated by projecting both onto random
directions and comparing the sorted projections (the 1-D Wasserstein distance), reported x 1e3.

One deliberate change from the reference: Karras normalises each set of descriptors by its *own*
per-channel mean and std, which makes a global colour cast or a loss of contrast invisible. Here
both sets are normalised by the *real* frames' statistics, so those failures count too.

Diversity is the mean pairwise RMS distance between downscaled frames: it falls towards 0 when G
collapses onto a few outputs, which SWD on small samples can miss. Compare it with the same figure
for the real frames.
"""

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vjgan.errors import RunError, StoreError
from vjgan.files import write_atomic
from vjgan.footage.store import FrameStore
from vjgan.plateau import Plateau, judge_run, plateau_line
from vjgan.plot import line_chart_png
from vjgan.run.directory import RunDir

PATCH_PX = 7  # side of each pyramid patch (Karras et al.)
MIN_LEVEL_PX = 16  # coarsest pyramid level's short side
DIVERSITY_SIZE_PX = 32  # frames are area-downscaled to this short side before pairwise distances
_BINOMIAL_5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16  # the pyramid's low-pass filter
# What to try once more training stops helping: by the run's model arch, else the general advice.
PLATEAU_HINTS = {"seed96": "try --preset modern (2-15x lower SWD than seed96 after the same images, bench/RESULTS.md)"}
PLATEAU_HINT = "try more varied footage or a larger --width"


@dataclass(frozen=True)
class EvalConfig:
    every_nth_snapshot: int = 1  # evaluate every n-th snapshot (the newest one always)
    store_frames: int = 1024  # frames drawn from the frame store as the real reference
    patches_per_image: int = 128  # random 7x7 patches per frame and pyramid level
    projections: int = 128  # random directions per repeat
    repeats: int = 4  # independent sets of directions, averaged
    seed: int = 0  # seeds the store sample, the patch positions and the directions


@dataclass(frozen=True)
class SwdResult:
    levels_px: list[int]  # short side of each pyramid level, finest first
    per_level_x1e3: list[float]  # SWD x 1e3 per level
    mean_x1e3: float  # mean over levels: the headline figure


def laplacian_pyramid(images: torch.Tensor, n_levels: int) -> list[torch.Tensor]:
    """(N, 3, H, W) -> band-pass levels at full, 1/2, 1/4 ... size; the last level is the low-pass rest."""
    levels = []
    current = images
    for _ in range(n_levels - 1):
        smaller = _blur(current)[:, :, ::2, ::2]  # (N, 3, ceil(H/2), ceil(W/2))
        levels.append(current - _upsample(smaller, current.shape[2:]))  # (N, 3, H, W): detail lost by halving
        current = smaller
    levels.append(current)
    return levels


def pyramid_levels_px(size_px: tuple[int, int]) -> list[int]:
    """Short side of each level: halve while at least `MIN_LEVEL_PX` (96 -> [96, 48, 24])."""
    side = min(size_px)
    if side < MIN_LEVEL_PX:
        raise ValueError(f"frames of {size_px} are smaller than the {MIN_LEVEL_PX}-pixel coarsest level")
    levels = []
    while side >= MIN_LEVEL_PX:
        levels.append(side)
        side //= 2
    return levels


class SwdReference:
    """The real side of SWD, prepared once: descriptors and their normalisation per level.

    Evaluating many snapshots against the same store frames reuses this, and the fixed seed
    gives every snapshot the same patch positions and projection directions, so differences
    between snapshots are differences between generators, not between random draws.
    """

    def __init__(self, real_uint8: np.ndarray, config: EvalConfig = EvalConfig()):
        self.config = config
        self.size_px = tuple(real_uint8.shape[1:3])
        self.levels_px = pyramid_levels_px(self.size_px)
        descriptors = _descriptors(real_uint8, self.levels_px, config, seed=config.seed)
        self.stats = [(d.mean(dim=(0, 1, 2)), d.std(dim=(0, 1, 2)).clamp_min(1e-8)) for d in descriptors]
        self.descriptors = [_normalise(d, stats) for d, stats in zip(descriptors, self.stats)]  # (D, 147) each
        directions = torch.Generator().manual_seed(config.seed + 1)
        self.directions = [_random_directions(d.shape[1], config, directions) for d in self.descriptors]
        self._sorted_real: dict[int, list[list[np.ndarray]]] = {}  # quantile count -> [level][repeat]

    def distance(self, fake_uint8: np.ndarray) -> SwdResult:
        if tuple(fake_uint8.shape[1:3]) != self.size_px:
            raise ValueError(f"generated frames are {fake_uint8.shape[1:3]}, the reference frames {self.size_px}")
        fake = _descriptors(fake_uint8, self.levels_px, self.config, seed=self.config.seed + 1)
        count = min(len(fake[0]), len(self.descriptors[0]))
        if count not in self._sorted_real:  # the real side's projections, sorted once per sample size
            self._sorted_real[count] = [
                [_sorted_projections(real, d, count) for d in level_directions]
                for real, level_directions in zip(self.descriptors, self.directions)
            ]
        per_level = []
        for real_sorted, fake_desc, stats, level_directions in zip(self._sorted_real[count], fake, self.stats, self.directions):
            fake_desc = _normalise(fake_desc, stats)
            # 1-D Wasserstein distance along each direction, averaged over directions and repeats
            distances = [
                float(np.abs(r - _sorted_projections(fake_desc, d, count)).mean()) for r, d in zip(real_sorted, level_directions)
            ]
            per_level.append(float(np.mean(distances)) * 1e3)
        return SwdResult(self.levels_px, per_level, float(np.mean(per_level)))


def sliced_wasserstein(real_uint8: np.ndarray, fake_uint8: np.ndarray, config: EvalConfig = EvalConfig()) -> SwdResult:
    """SWD x 1e3 between (N, H, W, 3) uint8 real frames and (M, H, W, 3) uint8 generated frames."""
    return SwdReference(real_uint8, config).distance(fake_uint8)


def diversity(frames_uint8: np.ndarray) -> float:
    """Mean pairwise RMS distance (0..1) between (N, H, W, 3) uint8 frames downscaled to 32 px."""
    if len(frames_uint8) < 2:
        raise ValueError("diversity needs at least two frames")
    images = _to_float(frames_uint8)  # (N, 3, H, W) in [0, 1]
    scale = DIVERSITY_SIZE_PX / min(images.shape[2:])
    if scale < 1:
        size = (max(1, round(images.shape[2] * scale)), max(1, round(images.shape[3] * scale)))
        images = F.interpolate(images, size=size, mode="area")  # (N, 3, ~32, ~32)
    flat = images.flatten(1).double()  # (N, D)
    distances = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])  # (N, N) RMS per pixel value
    n = len(flat)
    return float(distances.sum() / (n * (n - 1)))


@dataclass(frozen=True)
class SnapshotQuality:
    index: int  # snapshot number in the run
    images_seen: int  # images trained on when the snapshot was taken
    swd_x1e3: float  # mean over pyramid levels
    swd_per_level_x1e3: list[float]
    diversity: float


@dataclass(frozen=True)
class EvalReport:
    run_dir: Path
    store: Path
    levels_px: list[int]
    store_diversity: float  # the real frames' own diversity, the mark a healthy G approaches
    snapshots: list[SnapshotQuality]
    json_path: Path
    swd_png: Path
    diversity_png: Path
    plateau: Plateau  # whether the SWD curve has stopped falling (`vjgan.plateau`)
    plateau_line: str  # that verdict as the sentence `vjgan eval` prints


def evaluate_run(
    run_dir: Path,
    config: EvalConfig = EvalConfig(),
    store=None,
    on_snapshot: Callable[[int, int], None] | None = None,
    data: Path | None = None,
) -> EvalReport:
    """SWD and diversity of every n-th snapshot of a run against its frame store.

    The generated side of each point is the snapshot's whole fixed noise bank, so the curve follows
    one set of latents through training. `store` defaults to the frame store recorded in the run's
    config, or `data`: the run's store found at another path (accepted when its manifest shows it is
    the same store, see run.directory). Judges whether the curve has plateaued (`vjgan.plateau`). Writes
    `eval.json`, `swd.png` and `diversity.png` into the run; `on_snapshot(done, total)` reports progress.
    """
    run_dir = Path(run_dir)
    run = RunDir(run_dir).require()
    run_config = run.read_config()
    snapshots = run.snapshots()
    if len(snapshots) == 0:
        raise RunError(f"{run_dir}: no snapshots yet; train longer than one snapshot interval first")
    if store is None and data is not None:
        run.recognise_store(Path(data))
        store = FrameStore.open(Path(data))
    if store is None:
        recorded = Path(run_config.stores[0])  # a run of several stores: measured against the first
        try:
            store = FrameStore.open(recorded)
        except StoreError as error:
            raise StoreError(f"{error} (the run's store; if it moved, give it with --data)") from None
    if tuple(store.size_px) != tuple(snapshots.size_px):
        raise RunError(
            f"{run_dir}: snapshots are {snapshots.size_px[1]}x{snapshots.size_px[0]} but the frame store "
            f"{store.path} holds {store.size_px[1]}x{store.size_px[0]}; evaluate against a store of the run's size"
        )
    real = store.sample(min(config.store_frames, len(store)), np.random.default_rng(config.seed))
    reference = SwdReference(real, config)
    indices = sorted(set(range(0, len(snapshots), max(1, config.every_nth_snapshot))) | {len(snapshots) - 1})
    rows = []
    for done, index in enumerate(indices):
        frames = snapshots.frames(index, index + 1)[0]  # (bank_size, h, w, 3) uint8
        swd = reference.distance(frames)
        rows.append(SnapshotQuality(index, snapshots.images_seen[index], swd.mean_x1e3, swd.per_level_x1e3, diversity(frames)))
        if on_snapshot is not None:
            on_snapshot(done + 1, len(indices))
    seen = [row.images_seen for row in rows]
    finest = [row.swd_per_level_x1e3[0] for row in rows]
    plateau = judge_run(seen, [row.swd_x1e3 for row in rows], finest, reference.levels_px[0])
    line = plateau_line(plateau, PLATEAU_HINTS.get(run_config.model.arch, PLATEAU_HINT))
    return _write_report(run, Path(store.path), reference.levels_px, diversity(real), rows, plateau, line)


def read_report_rows(run_dir: Path) -> list[dict]:
    """The measured snapshots of a run's eval.json (the `SnapshotQuality` fields of each, as JSON values)."""
    return json.loads(RunDir(run_dir).eval_report_path.read_text())["snapshots"]


def _write_report(
    run: RunDir,
    store_path: Path,
    levels_px: list[int],
    store_diversity: float,
    rows: list[SnapshotQuality],
    plateau: Plateau,
    line: str,
) -> EvalReport:
    """eval.json (this module owns its format), swd.png and diversity.png, at the run's paths for them."""
    run_dir, json_path = run.path, run.eval_report_path
    report = {
        "store": str(store_path),
        "levels_px": levels_px,
        "store_diversity": store_diversity,
        "snapshots": [asdict(row) for row in rows],
        "plateau": {**plateau.to_json(), "line": line},
    }
    write_atomic(json_path, json.dumps(report, indent=1), "the evaluation report")
    seen = [row.images_seen for row in rows]
    swd_series = {"mean": (seen, [row.swd_x1e3 for row in rows])}
    for level, level_px in enumerate(levels_px):
        swd_series[f"{level_px} px"] = (seen, [row.swd_per_level_x1e3[level] for row in rows])
    swd_png = line_chart_png(
        run.swd_chart_path, swd_series, f"SWD vs store ({run_dir.name})", "images seen", "SWD x 1e3 (lower is better)", log_y=True
    )
    diversity_png = line_chart_png(
        run.diversity_chart_path,
        {"generated": (seen, [row.diversity for row in rows]), "store frames": (seen, [store_diversity] * len(rows))},
        f"Diversity ({run_dir.name})",
        "images seen",
        "mean pairwise RMS distance",
    )
    return EvalReport(run_dir, store_path, levels_px, store_diversity, rows, json_path, swd_png, diversity_png, plateau, line)


def _to_float(frames_uint8: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames_uint8)).permute(0, 3, 1, 2).float() / 255


def _blur(images: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial low-pass per channel, reflecting at the borders."""
    channels = images.shape[1]
    kernel = (_BINOMIAL_5[:, None] * _BINOMIAL_5[None, :]).to(images)  # (5, 5)
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernel.expand(channels, 1, 5, 5), groups=channels)


def _upsample(images: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """2x up by zero insertion and the same low-pass (x4 for the inserted zeros), cropped to `size`."""
    n, channels, h, w = images.shape
    spread = images.new_zeros(n, channels, 2 * h, 2 * w)
    spread[:, :, ::2, ::2] = images * 4
    return _blur(spread)[:, :, : size[0], : size[1]]


def _descriptors(frames_uint8: np.ndarray, levels_px: list[int], config: EvalConfig, seed: int) -> list[torch.Tensor]:
    """Per pyramid level, (N * patches, 7, 7, 3) patches at random positions (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    pyramid = laplacian_pyramid(_to_float(frames_uint8), len(levels_px))
    offsets = torch.arange(PATCH_PX)
    descriptors = []
    for level in pyramid:
        n, _, height, width = level.shape
        shape = (n, config.patches_per_image, 1, 1)
        top = torch.randint(0, height - PATCH_PX + 1, shape, generator=generator)
        left = torch.randint(0, width - PATCH_PX + 1, shape, generator=generator)
        batch = torch.arange(n)[:, None, None, None]
        rows, cols = top + offsets[:, None], left + offsets[None, :]  # (N, P, 7, 1), (N, P, 1, 7)
        patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # (N, P, 7, 7, 3)
        descriptors.append(patches.reshape(-1, PATCH_PX, PATCH_PX, 3))
    return descriptors


def _normalise(descriptors: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(D, 7, 7, 3) -> (D, 147), per-channel standardised by the given (real) statistics."""
    mean, std = stats
    return ((descriptors - mean) / std).flatten(1)


def _random_directions(dim: int, config: EvalConfig, generator: torch.Generator) -> list[torch.Tensor]:
    """`repeats` sets of `projections` random unit vectors, each (dim, projections)."""
    sets = []
    for _ in range(config.repeats):
        directions = torch.randn(dim, config.projections, generator=generator)  # (D, P)
        sets.append(directions / directions.norm(dim=0, keepdim=True))
    return sets


def _sorted_projections(descriptors: torch.Tensor, directions: torch.Tensor, count: int) -> np.ndarray:
    """(N, D) projected on (D, P) directions, sorted per direction, at `count` evenly spaced quantiles.

    Comparing sets of different sizes at the smaller one's quantiles keeps the estimate unbiased.
    (numpy sorts these rows about 4x faster than torch on the CPU.)
    """
    projected = np.sort((descriptors @ directions).T.numpy(), axis=1)  # (P, N)
    if projected.shape[1] == count:
        return projected
    columns = np.linspace(0, projected.shape[1] - 1, count).round().astype(np.int64)
    return projected[:, columns]  # (P, count)
