"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) and the original's random flips.

A few thousand near-identical VJ frames let D memorise the dataset within minutes; D then
gives G no useful gradient. DiffAugment shows D only randomly recoloured, shifted and holed
frames, real and fake alike, so memorising the exact frames stops paying. Because every operation is
differentiable, G's gradient passes through the augmentation of its own frames.

Strengths follow the reference implementation (mit-han-lab/data-efficient-gans), on images in
[-1, 1]: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), translation up to
1/8 of each side (zero fill), cutout of a half-size rectangle (zero fill). `zoom` is not DiffAugment's
but ADA's isotropic scaling (Karras et al. 2020): 2**N(0, 0.2) about the centre, bilinear, zero fill.
On a store of a few hundred frames (issue 15's typo: two 6-second clips) D learns the frames' exact
layout; zoom beside the shifts took that store's coarse-level SWD from 131 to 93 (bench/RESULTS.md).

All randomness comes from the `torch.Generator` passed in, so the trainer can save and restore its
state and a resumed run is bit-identical.
"""

import torch
import torch.nn.functional as F

from vjgan.errors import VjganError

TRANSLATION_FRACTION = 1 / 8  # largest shift, as a fraction of each side
CUTOUT_FRACTION = 1 / 2  # cutout rectangle side, as a fraction of each image side
ZOOM_LOG2_STD = 0.2  # zoom factor 2**N(0, 0.2): within 0.76x-1.32x for 95% of the images (ADA's isotropic scaling)


def parse_policy(policy: str) -> tuple[str, ...]:
    """ "color,translation,cutout" -> ("color", "translation", "cutout"); "" -> () (no augmentation)."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise VjganError(f"augment policy {policy!r}: unknown {', '.join(unknown)}; use a comma list of {', '.join(OPERATIONS)}")
    return names


def diff_augment(images: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """Augment (N, 3, H, W) images in [-1, 1], each with its own random parameters; differentiable."""
    for name in parse_policy(policy):
        images = OPERATIONS[name](images, generator)
    return images


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) U(0, 1) drawn from `generator` on its own device, then moved to where the images are."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _per_sample(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1) in the images' dtype, to broadcast over channels and pixels."""
    return values.to(images.dtype)[:, None, None, None]


def _color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = len(x)
    brightness = _per_sample(_uniform(n, generator, x.device) - 0.5, x)
    saturation = _per_sample(_uniform(n, generator, x.device) * 2, x)
    contrast = _per_sample(_uniform(n, generator, x.device) + 0.5, x)
    x = x + brightness
    grey = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    x = (x - grey) * saturation + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return (x - mean) * contrast + mean


def _random_ints(n: int, low: int, high: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) integers in [low, high], drawn from `generator`."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=generator.device).to(device)


def _translation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, height, width = x.shape
    max_dy, max_dx = int(height * TRANSLATION_FRACTION), int(width * TRANSLATION_FRACTION)
    dy = _random_ints(n, -max_dy, max_dy, generator, x.device)  # (N,)
    dx = _random_ints(n, -max_dx, max_dx, generator, x.device)
    padded = F.pad(x, (1, 1, 1, 1))  # (N, 3, H + 2, W + 2): the zero border fills what moves in
    rows = (torch.arange(height, device=x.device)[None] + dy[:, None] + 1).clamp(0, height + 1)  # (N, H)
    cols = (torch.arange(width, device=x.device)[None] + dx[:, None] + 1).clamp(0, width + 1)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]  # (N, 1, 1)
    moved = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, 3)
    return moved.permute(0, 3, 1, 2)  # (N, 3, H, W)


def _zoom(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = len(x)
    steps = torch.randn(n, generator=generator, device=generator.device).to(x.device)  # (N,)
    shrink = torch.exp2(-steps * ZOOM_LOG2_STD)  # (N,) sampling-grid scale: below 1 magnifies
    theta = torch.zeros(n, 2, 3, device=x.device)  # (N, 2, 3) affine maps about the centre, float32
    theta[:, 0, 0] = theta[:, 1, 1] = shrink
    grid = F.affine_grid(theta, list(x.shape), align_corners=False).to(x.dtype)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _cutout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, height, width = x.shape
    cut_h, cut_w = int(height * CUTOUT_FRACTION), int(width * CUTOUT_FRACTION)
    centre_y = _random_ints(n, 0, height - cut_h % 2, generator, x.device)  # (N,)
    centre_x = _random_ints(n, 0, width - cut_w % 2, generator, x.device)
    top, left = centre_y - cut_h // 2, centre_x - cut_w // 2
    rows = torch.arange(height, device=x.device)[None]  # (1, H)
    cols = torch.arange(width, device=x.device)[None]  # (1, W)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + cut_h)  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + cut_w)  # (N, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (N, H, W)
    return x * keep[:, None].to(x.dtype)


OPERATIONS = {"color": _color, "translation": _translation, "zoom": _zoom, "cutout": _cutout}  # policy name -> operation
