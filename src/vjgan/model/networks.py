"""The generator / discriminator family, one readable file in the spirit of pytorch/examples dcgan.

Two architectures share one skeleton (a Linear to a small base grid, then stride-2 blocks that
double or halve the resolution):

- ``seed96``: the original workflow's DCGAN, layer for layer: z uniform in [-1, 1];
  G = Linear -> BatchNorm -> ReLU, then 4x4 stride-2 transposed convolutions with BatchNorm + ReLU
  between and no output activation (the output is clamped to [-1, 1] only for display);
  D = 4x4 stride-2 convolutions with ELU (BatchNorm on all but the first), then Linear(-> 2) read
  as a 2-class softmax (real = class 0, fake = class 1).
- ``modern``: what trains better on small, highly self-similar VJ datasets: nearest-neighbour
  upsampling + 3x3 convolution in G (no checkerboard artefacts from transposed convolutions) and a
  tanh output, so G cannot waste capacity outside the displayable range; D with LeakyReLU(0.2) and a
  minibatch standard-deviation feature before its last layer (lets D see a collapsed batch, the
  main failure on small datasets), and a single realness logit.

Spectral normalisation in D (either architecture) replaces D's BatchNorm: the two fight each
other, and BatchNorm makes D's score of one image depend on the rest of its batch.

A convolution followed by BatchNorm has no bias: BatchNorm subtracts each channel's mean, which
cancels a per-channel bias exactly (its gradient is zero), so the function is the original's and the
step is faster (oneDNN computes transposed-convolution bias gradients on a slow path). G's first
Linear keeps its bias: BatchNorm there is per channel of the (C, h, w) grid, the bias per position.

Skip-layer excitation (``skip_excitation``, FastGAN, Liu et al. 2021), for ``modern``: each coarse
feature map of G also gates, channel by channel, the feature map 8x finer (4x4 -> 32x32 at 64 px). The
gate is computed from the whole coarse map, so the layout decided at the base grid reaches the fine
layers in one hop instead of through every block between; FastGAN found it a cheap way to sharper frames
from a few hundred images at 256-1024 px. At 64 px (one gate) it did not help in issue 15's screen
(bench/RESULTS.md), so no preset uses it yet. Off by default: runs made without it load as they were.

Channel count: ``width`` channels at full resolution, doubling per block towards the base grid and
capped at ``8 * width`` (seed96 at 96 px: 64 -> 128 -> 256 -> 512, base grid 6x6).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from vjgan.errors import VjganError

ARCHS = ("seed96", "modern")
LATENTS = ("uniform", "normal")
MIN_SIZE_PX = 32
MAX_SIZE_PX = 512  # 7 blocks from a 4x4 grid (786 KB a frame: a long 512 px store streams from disk, train.data)
SIZE_STEP_PX = 16  # every size is a multiple of this: the base grid is at least size / 16
MAX_BASE_GRID_PX = 6  # the base grid is halved (one more block) while larger than this and even
EXCITATION_SPAN_BLOCKS = 3  # a skip excitation gates the feature map 2**3 = 8x finer than the one it reads
EXCITATION_POOL_PX = 4  # the coarse map is pooled to this grid before the gate's 4x4 convolution


@dataclass(frozen=True)
class ModelConfig:
    size_px: tuple[int, int] = (96, 96)  # (height, width) of generated frames, pixels
    z_dim: int = 100  # values in one latent vector
    width: int = 64  # channels at full resolution (x2 per block towards the base grid, capped at x8)
    arch: str = "seed96"  # "seed96" (the original DCGAN) or "modern"
    spectral_norm: bool = False  # spectral normalisation on D's layers (replaces D's BatchNorm)
    latent: str = "uniform"  # latent distribution: "uniform" in [-1, 1] (the original) or "normal"
    skip_excitation: bool = False  # "modern" only: coarse feature maps of G gate those 8x finer (FastGAN's SLE)

    def __post_init__(self):
        object.__setattr__(self, "size_px", tuple(int(s) for s in self.size_px))
        height, width = self.size_px
        for side in (height, width):
            if side % SIZE_STEP_PX or not MIN_SIZE_PX <= side <= MAX_SIZE_PX:
                raise VjganError(
                    f"model size {width}x{height}: each side must be a multiple of {SIZE_STEP_PX} "
                    f"from {MIN_SIZE_PX} to {MAX_SIZE_PX} pixels"
                )
        if self.arch not in ARCHS:
            raise VjganError(f"model arch {self.arch!r}: unknown; choose one of {', '.join(ARCHS)}")
        if self.latent not in LATENTS:
            raise VjganError(f"model latent {self.latent!r}: unknown; choose one of {', '.join(LATENTS)}")
        if self.skip_excitation and self.arch != "modern":
            raise VjganError(f"model skip_excitation: only for arch 'modern', not {self.arch!r} (seed96 stays the original)")
        if self.z_dim < 1 or self.width < 1:
            raise VjganError(f"model z_dim={self.z_dim}, width={self.width}: both must be at least 1")

    @property
    def n_blocks(self) -> int:
        """Stride-2 blocks between the base grid and the full size.

        At least 4 (the original's 16x). Larger sizes get more blocks rather than a larger base grid
        (128 -> 4x4 base with 5 blocks, 256 -> 4x4 with 6): a small base grid keeps the Linear
        layers small (a 16x16x512 grid would put 13M weights in G's first layer alone) and lets
        the deepest features span the whole frame, as the original's 6x6 does at 96 px.
        """
        grid = [side // SIZE_STEP_PX for side in self.size_px]
        blocks = 4
        while min(grid) > MAX_BASE_GRID_PX and all(g % 2 == 0 for g in grid):
            grid = [g // 2 for g in grid]
            blocks += 1
        return blocks

    @property
    def base_grid(self) -> tuple[int, int]:
        """(height, width) of the deepest feature map."""
        scale = 2**self.n_blocks
        return (self.size_px[0] // scale, self.size_px[1] // scale)

    @property
    def channels(self) -> list[int]:
        """Feature channels from the base grid up to the last block's input, e.g. [512, 256, 128, 64]."""
        return [self.width * min(2**i, 8) for i in reversed(range(self.n_blocks))]

    @property
    def excitations(self) -> list[tuple[int, int]]:
        """(coarse, fine) indices into `channels` of G's skip excitations; none without `skip_excitation`."""
        if not self.skip_excitation:
            return []
        return [(i, i + EXCITATION_SPAN_BLOCKS) for i in range(self.n_blocks - EXCITATION_SPAN_BLOCKS)]


def latent_from_gaussian(g: torch.Tensor, latent: str) -> torch.Tensor:
    """Map standard-normal vectors to the model's latent distribution.

    Latent paths (walks, loops, audio paths) are built in Gaussian space, where slerp keeps vectors
    typical; this converts them once at the end. For "uniform", Phi(g) is uniform in [0, 1], so
    2 Phi(g) - 1 = erf(g / sqrt 2) is uniform in [-1, 1].
    """
    if latent == "uniform":
        return torch.erf(g / math.sqrt(2.0))
    if latent == "normal":
        return g
    raise VjganError(f"model latent {latent!r}: unknown; choose one of {', '.join(LATENTS)}")


def sample_latents(
    n: int, z_dim: int, latent: str, generator: torch.Generator, device: torch.device | str | None = None
) -> torch.Tensor:
    """`n` latent vectors (n, z_dim) from `generator`, the one place latents are drawn."""
    device = generator.device if device is None else device
    g = torch.randn(n, z_dim, generator=generator, device=generator.device).to(device)
    return latent_from_gaussian(g, latent)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float images (G's output, unbounded for seed96) -> (N, H, W, 3) uint8 for display."""
    scaled = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv / linear weights N(0, 0.02), BatchNorm scale N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, 3, H, W), in [-1, 1] for "modern", unbounded for "seed96"."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = config.channels
        grid_h, grid_w = config.base_grid
        self.project = nn.Linear(config.z_dim, channels[0] * grid_h * grid_w)  # (N, 512 * 6 * 6) for seed96
        blocks = [nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)]  # per channel of (N, 512, 6, 6)
        for c_in, c_out in zip(channels, channels[1:]):
            blocks += [_upsample(config.arch, c_in, c_out, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            # state size: (N, c_out, 2h, 2w), e.g. (N, 256, 12, 12) after the first seed96 block
        blocks.append(_upsample(config.arch, channels[-1], 3, bias=True))  # (N, 3, H, W)
        if config.arch == "modern":
            blocks.append(nn.Tanh())
        self.blocks = nn.Sequential(*blocks)
        self.excite = nn.ModuleList(SkipExcitation(channels[coarse], channels[fine]) for coarse, fine in config.excitations)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        grid_h, grid_w = self.config.base_grid
        x = self.project(z)  # (N, 512 * 6 * 6)
        x = x.reshape(len(z), -1, grid_h, grid_w)  # (N, 512, 6, 6)
        if not self.excite:
            return self.blocks(x)  # (N, 3, 96, 96): BatchNorm + ReLU, then the upsampling blocks
        excite_at = {fine: excite for (_, fine), excite in zip(self.config.excitations, self.excite)}
        features = []  # the feature map at each resolution, coarsest first: (N, channels[i], h * 2**i, w * 2**i)
        for index, layer in enumerate(self.blocks):
            x = layer(x)
            if index % 3 == 1 and index < len(self.blocks) - 2:  # after a ReLU ([BN, ReLU], then [up, BN, ReLU] per block)
                stage = len(features)
                if stage in excite_at:
                    x = excite_at[stage](features[stage - EXCITATION_SPAN_BLOCKS], x)  # gated by the map 8x coarser
                features.append(x)
        return x  # (N, 3, H, W)


class Discriminator(nn.Module):
    """images (N, 3, H, W) -> realness score (N,): positive means "real".

    seed96 keeps the original Linear(-> 2) softmax head and returns logits[:, 0] - logits[:, 1];
    softmax cross-entropy with real = 0 / fake = 1 is exactly binary cross-entropy with logits on
    that difference, so every loss in `losses.py` works on one score for both architectures.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = config.channels[::-1]  # full resolution -> base grid: [64, 128, 256, 512]
        grid_h, grid_w = config.base_grid
        layers = []
        for i, (c_in, c_out) in enumerate(zip([3] + channels, channels)):
            batchnorm = i > 0 and not config.spectral_norm
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm))  # (N, c_out, H/2, W/2), e.g. (N, 64, 48, 48)
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ELU(inplace=True) if config.arch == "seed96" else nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers)  # (N, 512, 6, 6)
        if config.arch == "seed96":
            self.minibatch_stddev = None
            self.head = nn.Linear(channels[-1] * grid_h * grid_w, 2)  # (N, 2) class logits
        else:
            self.minibatch_stddev = MinibatchStddev()  # (N, 513, 6, 6)
            self.head = nn.Linear((channels[-1] + 1) * grid_h * grid_w, 1)  # (N, 1)
        self.apply(init_weights)
        if config.spectral_norm:  # after init, so the stored unnormalised weights keep the DCGAN init
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    apply_spectral_norm(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, 6, 6)
        if self.minibatch_stddev is not None:
            x = self.minibatch_stddev(x)  # (N, 513, 6, 6)
        logits = self.head(x.flatten(1))  # (N, 2) for seed96, (N, 1) for modern
        if logits.shape[1] == 2:
            return logits[:, 0] - logits[:, 1]  # (N,) real-class minus fake-class logit
        return logits[:, 0]  # (N,)


class MinibatchStddev(nn.Module):
    """Append one channel: the batch's mean feature standard deviation (Karras et al. 2018).

    A collapsed generator produces a batch with near-zero spread; this channel lets D see that
    directly, which pushes G back towards variety on small datasets.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x.float().std(dim=0, unbiased=False).mean()  # () over (C, h, w) of per-position stds
        extra = spread.to(x.dtype).expand(x.shape[0], 1, x.shape[2], x.shape[3])  # (N, 1, h, w)
        return torch.cat([x, extra], dim=1)  # (N, C + 1, h, w)


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation: a coarse map (N, C, h, w) scales each channel of a fine map (N, c, 8h, 8w).

    Pooling to a 4x4 grid and a 4x4 convolution read the coarse map whole; the sigmoid gate in (0, 1) per
    channel lets it switch fine features on and off (a per-frame "style"), a multiplication rather than an
    addition, so it costs two small convolutions and no full-resolution work.
    """

    def __init__(self, coarse_channels: int, fine_channels: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(EXCITATION_POOL_PX),  # (N, C, 4, 4)
            nn.Conv2d(coarse_channels, fine_channels, EXCITATION_POOL_PX, bias=False),  # (N, c, 1, 1)
            nn.SiLU(),
            nn.Conv2d(fine_channels, fine_channels, 1, bias=False),
            nn.Sigmoid(),  # (N, c, 1, 1) in (0, 1)
        )

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return fine * self.gate(coarse)


class NearestUpsample2x(nn.Module):
    """2x nearest-neighbour upsampling in the input's own dtype.

    Copying pixels is exact in any dtype, but CUDA's autocast lists upsample_nearest2d as float32-only:
    under bf16 it would cast up, copy at 4x the pixels and cast back, twice the memory traffic of the
    layer. (The CPU's autocast leaves it in bf16 already: same numbers there.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.interpolate(x, scale_factor=2, mode="nearest")


def _upsample(arch: str, c_in: int, c_out: int, bias: bool) -> nn.Module:
    """One 2x upsampling layer: the original's 4x4 stride-2 transposed conv, or upsample + 3x3 conv."""
    if arch == "seed96":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
    return nn.Sequential(NearestUpsample2x(), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))
