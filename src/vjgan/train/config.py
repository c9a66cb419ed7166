"""Every setting of a training run: one frozen dataclass, named presets, and its TOML form.

The defaults are the original workflow (`seed96`): a 96x96 DCGAN trained with Adam(2e-4, 0.5) and
weight decay 1e-5 on batches of 100, for 1000 "epochs" of 5000 images. The CLI starts from a preset
and overrides single fields with `dataclasses.replace`; the resolved config is written into the run
directory and into every checkpoint, so a run can always be reproduced and resumed.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vjgan.device import DEVICES, PRECISIONS
from vjgan.errors import RunError, VjganError
from vjgan.model.augment import parse_policy
from vjgan.model.losses import LOSS_KINDS
from vjgan.model.networks import ModelConfig

BALANCES = ("frames", "sources")
DATA_MODES = ("auto", "memory", "stream")

# Settings of one session rather than of the run: changing them on resume keeps the run's history.
# (Training further with a larger `images_total` is the point of resuming; the rest only changes where
# and how fast the same maths runs, or for how long this session may run. A store given at another
# path is checked by its manifest instead, see run.directory. EMA-G's BatchNorm statistics are measured
# for its frames only, so a run made before `modern2` measured them takes it up on resume.)
SESSION_FIELDS = (
    "images_total",
    "minutes",
    "precision",
    "compile",
    "cuda_graph",
    "device",
    "store",
    "data",
    "data_budget_gib",
    "ema_batchnorm_latents",
)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    store: str | tuple[str, ...] = ""  # frame store directory (DATA_DIR/<genre>), or several trained on as one; recorded resolved
    batch_size: int = 100  # images per optimisation step, all ranks together
    lr: float = 2e-4  # Adam learning rate of both networks
    betas: tuple[float, float] = (0.5, 0.999)  # Adam (beta1, beta2)
    weight_decay: float = 1e-5  # L2 penalty added to the gradients (the original's WeightDecay hook)
    loss: str = "bce"  # "bce" (the original), "hinge" or "relativistic" (pairs of real and fake frames, R3GAN)
    gradient_penalty: float = 0.0  # gamma of the R1 + R2 penalties, gamma / 2 * E|grad D|^2 on real and on fake frames; 0: off
    gradient_penalty_every_steps: int = 1  # lazy regularisation (StyleGAN2): penalties on every n-th step only, n times as strong
    flip: bool = True  # mirror a random half of each real batch left-right
    balance: str = "frames"  # real frames drawn uniformly ("frames") or a uniform source video, then a frame of it ("sources")
    augment: str = ""  # DiffAugment policy, e.g. "color:0.5,translation,cutout" (op:strength); "" = none
    ema_half_life_images: int = 10_000  # images after which the EMA generator's memory halves
    ema_rampup: float = 0.05  # half-life at most this fraction of the images seen so far; 0: fixed half-life
    ema_batchnorm_latents: int = 0  # latents EMA-G's BatchNorm statistics are measured on at snapshots and checkpoints; 0: G's
    images_total: int = 5_000_000  # images to train on, all sessions together (1000 epochs x 5000)
    snapshot_every_images: int = 5_000  # images between fixed-noise snapshots (one per original epoch)
    checkpoint_every_images: int = 50_000  # images between checkpoints
    log_every_steps: int = 50  # optimisation steps between log records (the only host syncs)
    noise_bank_size: int = 64  # latent vectors in the fixed noise bank each snapshot renders
    seed: int = 0  # the seed of every random choice in the run
    precision: str = "auto"  # "auto" (bf16 where the hardware runs it natively), "fp32" or "bf16"
    compile: bool = False  # torch.compile G and D (pays off on CUDA for long runs)
    cuda_graph: bool = False  # on CUDA, replay the whole step as one CUDA graph (see `train.step`); one process only
    minutes: float | None = None  # wall-clock budget of this session in minutes; None = no limit
    device: str = "auto"  # "auto" (CUDA, else MPS, when available), "cpu", "cuda" or "mps"
    data: str = "auto"  # frames on the device ("memory"), read from disk as training goes ("stream"), or "auto" (train.data)
    data_budget_gib: float | None = None  # with data "auto": stream when the frames exceed this; None = half the free memory

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not isinstance(self.store, str):  # several stores (TOML gives a list)
            object.__setattr__(self, "store", tuple(str(path) for path in self.store))
        positive = (
            "batch_size",
            "gradient_penalty_every_steps",
            "ema_half_life_images",
            "images_total",
            "snapshot_every_images",
            "checkpoint_every_images",
            "log_every_steps",
            "noise_bank_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise VjganError(f"train setting {name}={getattr(self, name)}: must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise VjganError(f"train setting lr={self.lr}: must be a positive number")
        if self.loss not in LOSS_KINDS:
            raise VjganError(f"train setting loss={self.loss!r}: choose one of {', '.join(LOSS_KINDS)}")
        if self.precision not in PRECISIONS:
            raise VjganError(f"train setting precision={self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise VjganError(f"train setting device={self.device!r}: choose one of {', '.join(DEVICES)}")
        if self.balance not in BALANCES:
            raise VjganError(f"train setting balance={self.balance!r}: choose one of {', '.join(BALANCES)}")
        if self.data not in DATA_MODES:
            raise VjganError(f"train setting data={self.data!r}: choose one of {', '.join(DATA_MODES)}")
        if self.data_budget_gib is not None and not self.data_budget_gib > 0:
            raise VjganError(f"train setting data_budget_gib={self.data_budget_gib}: must be more than 0")
        if not (math.isfinite(self.gradient_penalty) and self.gradient_penalty >= 0):
            raise VjganError(f"train setting gradient_penalty={self.gradient_penalty}: must be 0 (off) or a positive number")
        if self.ema_batchnorm_latents < 0:
            raise VjganError(f"train setting ema_batchnorm_latents={self.ema_batchnorm_latents}: must be 0 (copy G's) or more")
        if not self.ema_rampup >= 0:
            raise VjganError(f"train setting ema_rampup={self.ema_rampup}: must be 0 (off) or more")
        if self.minutes is not None and not self.minutes > 0:
            raise VjganError(f"train setting minutes={self.minutes}: must be more than 0")
        parse_policy(self.augment)

    @property
    def stores(self) -> tuple[str, ...]:
        """The frame stores whose frames are drawn from as one pool (one, unless `vjgan train DATA/a DATA/b`)."""
        if isinstance(self.store, str):
            return (self.store,) if self.store else ()
        return self.store

    def ema_beta(self, images_seen: int) -> float:
        """EMA-G's decay for the step after `images_seen`: its memory halves every `ema_half_life_images`
        whatever the batch size. With `ema_rampup` (as stylegan2-ada) the half-life grows with training
        at first, so early snapshots show what G has learnt instead of the initial weights."""
        half_life = self.ema_half_life_images
        if self.ema_rampup > 0:
            half_life = min(half_life, max(images_seen, self.batch_size) * self.ema_rampup)
        return 0.5 ** (self.batch_size / half_life)


PRESETS = {
    "seed96": TrainConfig(),
    # Suggested by the model side for small, self-similar VJ datasets: upsample+conv G with tanh,
    # spectrally normalised D with a minibatch-stddev feature, hinge loss, DiffAugment, Gaussian z.
    "modern": TrainConfig(
        model=ModelConfig(arch="modern", spectral_norm=True, latent="normal"),
        batch_size=64,
        betas=(0.0, 0.99),
        weight_decay=0.0,
        loss="hinge",
        augment="color,translation,cutout",
    ),
}
# Issue 15, screened on the CPU (bench/RESULTS.md "Quality per minute"): at a fixed wall-clock budget the
# narrow net sees ~5x the images of width 64, twice the learning rate and half the batch take ~4x the
# steps, the relativistic pairing loss (R3GAN) ranks each real frame against a fake one, and zoom beside
# DiffAugment's shifts keeps D from memorising the layout of a small store (typo: two 6-second clips).
# At 96 px, colour changes at half strength let D see the footage's brightness modes (typo's black and lit
# frames) and R3GAN's R1 + R2 penalties (lazy, every 4th step) kept a seed from collapsing (particles): every
# genre 0.43-0.51 of modern's SWD over two seeds, where the misses were. Below 96 px they cost 17% of the
# images and make runs vary from seed to seed (typo 0.49 -> 0.61-0.84 of modern, organic 0.84 -> 1.07), so
# smaller frames keep the settings before them (SMALL_FRAME_SETTINGS; bench/RESULTS.md, "Seed 1 at 64 px").
# EMA-G's BatchNorm statistics are measured on EMA-G: G's, copied, swung its frames by up to 3x in SWD from
# one checkpoint to the next (particles at 64 px 0.63 -> 0.49 of modern; "EMA-G's BatchNorm statistics").
# Its zoom resamples bicubic (model.augment): bilinear blurred D's view of fine detail (organic at 96 px 0.60 ->
# 0.44 of modern over three seeds, every other 96 px cell lower too; particles at 64 px 0.47 over five seeds;
# "Zoom resampled bicubic", "Every cell again on the bicubic zoom", "Particles at 64 px over five seeds").
PRESETS["modern2"] = dataclasses.replace(
    PRESETS["modern"],
    model=dataclasses.replace(PRESETS["modern"].model, width=16),
    batch_size=32,
    lr=4e-4,
    loss="relativistic",
    augment="color:0.5,translation,zoom,cutout",
    gradient_penalty=1.0,
    gradient_penalty_every_steps=4,
    ema_batchnorm_latents=1024,
)
# For a GPU, to render at 1080p: modern2's training settings on a 256 px network of width 32 (channels 32 at
# 256 px up to 256 at the 4x4 base grid; G 2.0M weights, D 2.8M: 3-4x modern2's at 256 px). On a 512 px store
# it trains at 512 px (the store's size wins), one more block from the same 4x4 grid. Width 64 came first and
# lost the CPU proxy issue 15 asks for (128 px, 8 minutes on 2 cores): it sees a third of width 32's images and
# was further from the footage than `modern`; width 32 meets the target there, and image for image it is level
# with modern2's 16 (bench/RESULTS.md, "128 px CPU proxy, again"). A GPU makes width cheaper still:
# bench/device_quality256.sh measures 16, 32 and 64 at 256 px. A snapshot of the 64-latent bank is 12.6 MB at
# 256 px (50 MB at 512): one per 20,000 images keeps the default schedule's 250 snapshots (8 s of training video
# at 30 fps) to 3.1 GB, where one per 5,000 would write 12.6 GB.
PRESETS["modern256"] = dataclasses.replace(
    PRESETS["modern2"],
    model=dataclasses.replace(PRESETS["modern2"].model, size_px=(256, 256), width=32),
    snapshot_every_images=20_000,
)


# Settings a preset trains frames under SMALL_FRAMES_BELOW_PX (short side) with, where its own were measured
# to lose there (modern2: the comment above it).
SMALL_FRAMES_BELOW_PX = 96
SMALL_FRAME_SETTINGS = {
    "modern2": {"augment": "color,translation,zoom,cutout", "gradient_penalty": 0.0, "gradient_penalty_every_steps": 1},
}


def preset(name: str, frame_px: tuple[int, int] | None = None) -> TrainConfig:
    """The named preset, for frames of `frame_px` (height, width) where known: a preset tuned on larger
    frames takes its SMALL_FRAME_SETTINGS for small ones. Flags and overrides go on top of this."""
    if name not in PRESETS:
        raise VjganError(f"preset {name!r}: unknown; choose one of {', '.join(PRESETS)}")
    if frame_px is not None and min(frame_px) < SMALL_FRAMES_BELOW_PX:
        return dataclasses.replace(PRESETS[name], **SMALL_FRAME_SETTINGS.get(name, {}))
    return PRESETS[name]


def with_epochs(config: TrainConfig, epochs: int, images_per_epoch: int | None = None) -> TrainConfig:
    """The original's schedule form: `epochs` x `images_per_epoch` images, one snapshot per epoch."""
    per_epoch = config.snapshot_every_images if images_per_epoch is None else images_per_epoch
    return dataclasses.replace(config, images_total=epochs * per_epoch, snapshot_every_images=per_epoch)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain values only (TOML and JSON have no None: an unset `minutes` is left out)."""
    values = dataclasses.asdict(config)
    return {name: value for name, value in values.items() if value is not None}


def config_from_dict(values: dict[str, Any], source: Path | str) -> TrainConfig:
    """The inverse of `config_to_dict`; `source` names the file in the error for unknown settings."""
    try:
        model = ModelConfig(**values.get("model", {}))
        return TrainConfig(**{**values, "model": model})
    except TypeError as error:  # an unknown or missing field
        raise RunError(f"{source}: not a vjgan train config ({error})") from None


def run_setting_changes(stored: TrainConfig, wanted: TrainConfig) -> list[str]:
    """Settings that differ between a run and a new request, as "name: old -> new" (session fields excepted)."""
    old, new = _flatten(config_to_dict(stored)), _flatten(config_to_dict(wanted))
    session = set(SESSION_FIELDS)
    return [
        f"{name}: {old.get(name)!r} -> {new.get(name)!r}"
        for name in sorted(old.keys() | new.keys())
        if name not in session and old.get(name) != new.get(name)
    ]


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"width": 64}} -> {"model.width": 64}; tuples as lists so TOML and Python compare equal."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = list(value) if isinstance(value, tuple) else value
    return flat
