"""Line charts as PNG with Pillow alone: loss curves and quality curves without a plotting dependency.

One function serves every curve a run draws (`loss.png` from the trainer, `swd.png` and
`diversity.png` from evaluation), so they all read alike.
"""

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vjgan.files import atomic_path

CHART_SIZE_WH = (800, 450)  # pixels
MARGIN_PX = (80, 40, 30, 60)  # left, top, right, bottom: room for tick labels and titles
FONT_SIZE_PX = 14
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def line_chart_png(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    size_wh: tuple[int, int] = CHART_SIZE_WH,
) -> Path:
    """Draw each named (x, y) series as a line with a legend; write `path` atomically.

    Non-finite points (and, with `log_y`, non-positive ones) are left out rather than failing,
    because a diverging run is exactly when someone wants to see its curve.
    """
    path = Path(path)
    clean = {name: _finite_points(xs, ys, log_y) for name, (xs, ys) in series.items()}
    points = [p for pts in clean.values() for p in pts]
    width, height = size_wh
    left, top, right, bottom = MARGIN_PX
    plot_box = (left, top, width - right, height - bottom)
    image = Image.new("RGB", size_wh, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=FONT_SIZE_PX)
    draw.text((width / 2, 8), title, fill="black", font=font, anchor="mt")
    draw.text((width / 2, height - 6), x_label, fill="black", font=font, anchor="mb")
    draw.text((6, top - 24), y_label, fill="black", font=font, anchor="la")
    draw.rectangle(plot_box, outline="black")
    if not points:
        draw.text(
            ((plot_box[0] + plot_box[2]) / 2, (plot_box[1] + plot_box[3]) / 2), "no data", fill="gray", font=font, anchor="mm"
        )
    else:
        x_range = _padded_range(min(p[0] for p in points), max(p[0] for p in points))
        y_values = [math.log10(p[1]) if log_y else p[1] for p in points]
        y_range = _padded_range(min(y_values), max(y_values))

        def to_px(x: float, y: float) -> tuple[float, float]:
            y = math.log10(y) if log_y else y
            fx = (x - x_range[0]) / (x_range[1] - x_range[0])
            fy = (y - y_range[0]) / (y_range[1] - y_range[0])
            return plot_box[0] + fx * (plot_box[2] - plot_box[0]), plot_box[3] - fy * (plot_box[3] - plot_box[1])

        _draw_ticks(draw, font, plot_box, x_range, y_range, log_y)
        for i, (name, pts) in enumerate(clean.items()):
            colour = COLOURS[i % len(COLOURS)]
            pixels = [to_px(x, y) for x, y in pts]
            if len(pixels) > 1:
                draw.line(pixels, fill=colour, width=2)
            for px, py in pixels if len(pixels) <= 50 else []:
                draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colour)
            legend_y = plot_box[1] + 8 + i * (FONT_SIZE_PX + 4)
            draw.line((plot_box[2] - 150, legend_y + 7, plot_box[2] - 125, legend_y + 7), fill=colour, width=3)
            draw.text((plot_box[2] - 120, legend_y), name, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "a chart") as partial:
        image.save(partial, format="PNG")
    return path


def _finite_points(xs: Sequence[float], ys: Sequence[float], log_y: bool) -> list[tuple[float, float]]:
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys)]
    return [(x, y) for x, y in pairs if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]


def _padded_range(low: float, high: float) -> tuple[float, float]:
    """Axis limits with 5% headroom; a flat series still gets a visible span."""
    if high - low < 1e-12:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [low, high]."""
    raw_step = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 x 10^k values within [low, high] (for a log axis), thinned to about 8."""
    ticks = [
        m * 10.0**k
        for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for m in (1, 2, 5)
        if low <= m * 10.0**k <= high
    ]
    if len(ticks) < 2:
        return nice_ticks(low, high)
    return ticks[:: math.ceil(len(ticks) / 8)]


def _tick_label(value: float) -> str:
    """Short labels: 150000 -> "150k", 2500000 -> "2.5M", 0.0004 -> "4e-04"."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.0e}"
    return f"{value:.4g}"


def _draw_ticks(draw, font, plot_box, x_range, y_range, log_y: bool) -> None:
    left, top, right, bottom = plot_box
    for x in nice_ticks(*x_range):
        px = left + (x - x_range[0]) / (x_range[1] - x_range[0]) * (right - left)
        draw.line((px, bottom, px, bottom + 5), fill="black")
        draw.line((px, top, px, bottom), fill="#e6e6e6")
        draw.text((px, bottom + 8), _tick_label(x), fill="black", font=font, anchor="mt")
    y_ticks = [math.log10(t) for t in log_ticks(10 ** y_range[0], 10 ** y_range[1])] if log_y else nice_ticks(*y_range)
    for y in y_ticks:
        py = bottom - (y - y_range[0]) / (y_range[1] - y_range[0]) * (bottom - top)
        draw.line((left - 5, py, left, py), fill="black")
        draw.line((left, py, right, py), fill="#e6e6e6")
        draw.text((left - 8, py), _tick_label(10**y if log_y else y), fill="black", font=font, anchor="rm")
