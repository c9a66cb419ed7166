"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) and the original's random flips.

A few thousand near-identical VJ frames let D memorise the dataset within minutes; D then
gives G no useful gradient. DiffAugment shows D only randomly recoloured, shifted and holed
frames, real and fake alike, so memorising the exact frames stops paying. Because every operation is
differentiable, G's gradient passes through the augmentation of its own frames.

Strengths follow the reference implementation (mit-han-lab/data-efficient-gans), on images in
[-1, 1]: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), translation up to
1/8 of each side (zero fill), cutout of a half-size rectangle (zero fill). `zoom` is not DiffAugment's
but ADA's isotropic scaling (Karras et al. 2020): 2**N(0, 0.2) about the centre, bicubic, zero fill.
On a store of a few hundred frames (issue 15's typo: two 6-second clips) D learns the frames' exact
layout; zoom beside the shifts took that store's coarse-level SWD from 131 to 93 (bench/RESULTS.md).
Bicubic, not bilinear: a bilinear zoom near 1x averages neighbouring pixels, which blurs every frame D
sees, real and fake alike, so D stops telling sharp detail from soft and G is not pushed to draw it
(a 4-pixel grating keeps 85% of its contrast through a bilinear zoom, 99% through a bicubic one; on issue
15's organic store at 96 px, whose moire rings G drew as blur, the finest-level SWD fell from 70-91 to 27-64
over three seeds; bench/RESULTS.md "Zoom resampled bicubic").

`color` is three operations a policy may also name one by one: `brightness`, `saturation`, `contrast`.
A policy names its operations in order, each at the reference strength or scaled by a factor after a
colon ("color:0.5,translation,cutout": half the colour changes, full shifts and holes): footage differs in
what D may safely be blind to (issue 15's organic store lost its fine detail under full-strength colour
changes, which hide its dark and lit frames' brightness from D; bench/RESULTS.md).

All randomness comes from the `torch.Generator` passed in, so the trainer can save and restore its
state and a resumed run is bit-identical.
"""

import functools
import math

import torch
import torch.nn.functional as F

from vjgan.errors import VjganError
from vjgan.kernels import keys_cubic

TRANSLATION_FRACTION = 1 / 8  # largest shift, as a fraction of each side
CUTOUT_FRACTION = 1 / 2  # cutout rectangle side, as a fraction of each image side
ZOOM_LOG2_STD = 0.2  # zoom factor 2**N(0, 0.2): within 0.76x-1.32x for 95% of the images (ADA's isotropic scaling)
BICUBIC_A = -0.75  # Keys' kernel parameter, as torch's grid_sample (bicubic) uses
MAX_STRENGTH = 2.0  # "op:2" doubles an operation's reach (translation up to 1/4 of each side); more is not augmentation


@functools.lru_cache(maxsize=16)
def parse_policy(policy: str) -> tuple[tuple[str, float], ...]:
    """ "color:0.5,translation" -> (("color", 0.5), ("translation", 1.0)); "" -> () (no augmentation).
    Cached: the trainer augments with the same policy three times a step."""
    steps = []
    for item in filter(None, (part.strip() for part in policy.split(","))):
        name, _, strength_text = (part.strip() for part in item.partition(":"))
        if name not in POLICY_NAMES:
            raise VjganError(f"augment policy {policy!r}: unknown {name}; use a comma list of {', '.join(POLICY_NAMES)}")
        try:
            strength = float(strength_text) if strength_text else 1.0
        except ValueError:
            strength = math.nan
        if not 0 < strength <= MAX_STRENGTH:
            raise VjganError(f"augment policy {policy!r}: {item}: give a strength above 0 and at most {MAX_STRENGTH:g}")
        steps.append((name, strength))
    return tuple(steps)


def diff_augment(images: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """Augment (N, 3, H, W) images in [-1, 1], each with its own random parameters; differentiable.

    The result is float32 whatever the input: G's bf16 frames are augmented in float32, since CPUs run
    these elementwise and resampling kernels 1.5-3x slower in bf16 (D's autocast casts them back).
    Consecutive shifts and zooms ("translation,zoom") are one resampling of the frame, their maps composed,
    instead of one pass each: the same picture at a fraction of the time, but for the strip a shift moves
    out of the frame, which a zoom-out that follows shows again instead of black."""
    steps = parse_policy(policy)
    if not steps:
        return images
    images = images.float()
    start = 0
    while start < len(steps):
        end = start + 1
        if steps[start][0] in SAMPLING_MAPS:
            while end < len(steps) and steps[end][0] in SAMPLING_MAPS:
                end += 1
            images = _resample(images, steps[start:end], generator)
        else:
            name, strength = steps[start]
            images = OPERATIONS[name](images, generator, strength)
        start = end
    return images


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) U(0, 1) drawn from `generator` on its own device, then moved to where the images are."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _per_sample(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1) in the images' dtype, to broadcast over channels and pixels."""
    return values.to(images.dtype)[:, None, None, None]


def _brightness_shift(n: int, generator: torch.Generator, device: torch.device, strength: float) -> torch.Tensor:
    """(N,) U(-0.5, 0.5) x `strength` (each factor's spread about "no change" is scaled, written so that
    strength 1 is the reference exactly)."""
    return (_uniform(n, generator, device) - 0.5) * strength


def _saturation_factor(n: int, generator: torch.Generator, device: torch.device, strength: float) -> torch.Tensor:
    """(N,) U(1 - strength, 1 + strength), at least 0."""
    return (_uniform(n, generator, device) * 2 * strength + (1 - strength)).clamp(min=0)


def _contrast_factor(n: int, generator: torch.Generator, device: torch.device, strength: float) -> torch.Tensor:
    """(N,) U(1 - strength / 2, 1 + strength / 2)."""
    return _uniform(n, generator, device) * strength + (1 - strength / 2)


def _brightness(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """+ a shift per image."""
    return x + _per_sample(_brightness_shift(len(x), generator, x.device, strength), x)


def _saturation(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Distance from each pixel's grey x a factor per image."""
    factor = _per_sample(_saturation_factor(len(x), generator, x.device, strength), x)
    grey = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    return (x - grey) * factor + grey


def _contrast(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Distance from each image's mean x a factor per image."""
    factor = _per_sample(_contrast_factor(len(x), generator, x.device, strength), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return (x - mean) * factor + mean


def _color(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """DiffAugment's colour step: brightness, saturation, contrast in that order, as one per-image blend.

    With shift b, saturation factor s and contrast factor c (drawn in that order), the three steps come to
    c s x + c (1 - s) grey + (1 - c) mean + b: saturation keeps the mean, so contrast's mean is mean + b.
    Four passes over the frames instead of nine (a third of a CPU step's augmentation time)."""
    n = len(x)
    shift = _brightness_shift(n, generator, x.device, strength)  # the three steps' draws, in their order
    saturation = _saturation_factor(n, generator, x.device, strength)
    contrast = _contrast_factor(n, generator, x.device, strength)
    grey = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    offset = (1 - _per_sample(contrast, x)) * mean + _per_sample(shift, x)  # (N, 1, 1, 1)
    return torch.addcmul(offset + grey * _per_sample(contrast * (1 - saturation), x), x, _per_sample(contrast * saturation, x))


def _random_ints(n: int, low: int, high: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) integers in [low, high], drawn from `generator`."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=generator.device).to(device)


def _translation_map(
    n: int, height: int, width: int, generator: torch.Generator, strength: float, device: torch.device
) -> torch.Tensor:
    """(N, 2, 3) sampling maps that shift each image by whole pixels, up to `TRANSLATION_FRACTION` of each side."""
    max_dy, max_dx = int(height * TRANSLATION_FRACTION * strength), int(width * TRANSLATION_FRACTION * strength)
    dy = _random_ints(n, -max_dy, max_dy, generator, device)  # (N,) pixels
    dx = _random_ints(n, -max_dx, max_dx, generator, device)
    theta = torch.eye(2, 3, device=device).repeat(n, 1, 1)  # (N, 2, 3) in grid_sample's [-1, 1] coordinates: 2 / side per pixel
    theta[:, 0, 2] = dx * 2 / width
    theta[:, 1, 2] = dy * 2 / height
    return theta


def _zoom_map(n: int, height: int, width: int, generator: torch.Generator, strength: float, device: torch.device) -> torch.Tensor:
    """(N, 2, 3) sampling maps that scale each image about its centre by 2**N(0, `ZOOM_LOG2_STD`)."""
    steps = torch.randn(n, generator=generator, device=generator.device).to(device)  # (N,)
    shrink = torch.exp2(-steps * (ZOOM_LOG2_STD * strength))  # (N,) sampling-grid scale: below 1 magnifies
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = theta[:, 1, 1] = shrink
    return theta


def _resample(x: torch.Tensor, steps: tuple[tuple[str, float], ...], generator: torch.Generator) -> torch.Tensor:
    """Apply shifts and zooms in `steps` order as one resampling, zero fill outside the frame.

    Output pixel p of op_k(...op_1(x)) reads x at A_1 A_2 ... A_k p, each A an op's sampling map. Shifts
    alone land on pixel centres, so they use nearest sampling and move pixel values exactly; a zoom reads
    between them, bicubic (the module docstring says why not bilinear)."""
    n, _, height, width = x.shape
    with torch.autocast(x.device.type, enabled=False):  # the maps and the matrix products in float32, not bf16
        total = torch.eye(3, device=x.device).repeat(n, 1, 1)  # (N, 3, 3) homogeneous sampling map
        last_row = total[:, 2:]  # (N, 1, 3): (0, 0, 1)
        for name, strength in steps:
            total = total @ torch.cat([SAMPLING_MAPS[name](n, height, width, generator, strength, x.device), last_row], 1)
        if any(name == "zoom" for name, _ in steps):
            return bicubic_axis_aligned(x, total)
    grid = F.affine_grid(total[:, :2], [n, 1, height, width], align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def bicubic_axis_aligned(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """grid_sample(mode="bicubic", zero fill) for maps that only scale and shift each axis, as two matrix
    products: rows, then columns (each output pixel reads 4 x 4 source pixels, a band of each matrix). On a
    CPU this runs 2-3x faster than grid_sample's bicubic mode, forward and backward: 5 against 14 ms for 64
    frames at 64 px on 2 cores, 16 against 32 at 96 px, where bilinear takes 4 and 9. The matrices are dense,
    so the cost grows with the side cubed: at 256 px and above it is a GPU's matrix units that carry it. The
    maps' rotation and shear terms are not read (translation and zoom have none): checking them here would
    stop the host on every step and break the capture of a CUDA graph."""
    _, _, height, width = x.shape
    rows = _cubic_matrix(maps[:, 1, 1], maps[:, 1, 2], height)  # (N, H, H)
    cols = _cubic_matrix(maps[:, 0, 0], maps[:, 0, 2], width)  # (N, W, W)
    return rows[:, None] @ x @ cols[:, None].transpose(-1, -2)


def _cubic_matrix(scale: torch.Tensor, offset: torch.Tensor, size: int) -> torch.Tensor:
    """(N, size, size): row i holds the weights output pixel i reads the source pixels of one axis with,
    for the map u -> scale * u + offset in grid_sample's [-1, 1] coordinates (align_corners=False)."""
    centres = (2 * torch.arange(size, device=scale.device) + 1) / size - 1  # (size,) output pixel centres
    source = ((scale[:, None] * centres + offset[:, None] + 1) * size - 1) / 2  # (N, size) source pixel positions
    taps = source.floor()[..., None] + torch.arange(-1, 3, device=scale.device)  # (N, size, 4) source pixels read
    weights = keys_cubic(source[..., None] - taps, BICUBIC_A) * ((taps >= 0) & (taps < size))  # zero fill outside
    matrix = torch.zeros(len(scale), size, size, device=scale.device)
    return matrix.scatter_add_(2, taps.clamp(0, size - 1).long(), weights)


def _cutout(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    n, _, height, width = x.shape
    fraction = min(CUTOUT_FRACTION * strength, 1.0)
    cut_h, cut_w = int(height * fraction), int(width * fraction)
    centre_y = _random_ints(n, 0, height - cut_h % 2, generator, x.device)  # (N,)
    centre_x = _random_ints(n, 0, width - cut_w % 2, generator, x.device)
    top, left = centre_y - cut_h // 2, centre_x - cut_w // 2
    rows = torch.arange(height, device=x.device)[None]  # (1, H)
    cols = torch.arange(width, device=x.device)[None]  # (1, W)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + cut_h)  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + cut_w)  # (N, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (N, H, W)
    return x * keep[:, None].to(x.dtype)


OPERATIONS = {
    "color": _color,
    "brightness": _brightness,
    "saturation": _saturation,
    "contrast": _contrast,
    "cutout": _cutout,
}  # policy name -> operation on the images
SAMPLING_MAPS = {"translation": _translation_map, "zoom": _zoom_map}  # policy name -> (N, 2, 3) resampling map
POLICY_NAMES = (*OPERATIONS, *SAMPLING_MAPS)  # what a policy may name
