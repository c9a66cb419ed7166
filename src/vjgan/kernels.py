"""Resampling kernels written once for numpy arrays and torch tensors alike: the renderer's upscaler
(render.layout, numpy weight tables) and the training augmentation's zoom (model.augment, torch, on the
training device) read the same curve with different parameters."""


def keys_cubic(distance, a: float):
    """Keys' cubic convolution kernel at `distance` (an array or tensor of tap offsets, in source pixels).
    `a` sets its sharpness: -0.5 is Catmull-Rom (Pillow's bicubic), -0.75 what torch's grid_sample uses."""
    d = abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
    return near * (d <= 1) + far * ((d > 1) & (d < 2))
