"""Line charts as inline SVG, drawn here: the live page and the static export show the same markup.

No chart library and no script: an SVG string works offline, from ``file://``, and in a report
mailed around. Each series is one ``<path>`` (broken where a value is missing); short series
get point markers whose ``<title>`` shows the value on hover; error bars draw confidence
intervals (evaluations' Wilson intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#2f6fdf", "#e0662a", "#23a26d", "#c23b7a", "#8a63d2", "#b08a1c", "#1d9bb4", "#6b6b6b")
MARKERS_UP_TO = 60  # points per series that still get hover markers


@dataclass
class Series:
    """One line: ``points`` are (x, y) with y None for a missing value; ``bars`` are (x, low, high)."""

    label: str
    color: str
    points: list[tuple[float, float | None]] = field(default_factory=list)
    bars: list[tuple[float, float, float]] = field(default_factory=list)
    key: str = ""  # names the series for scripts and tests (a run id)
    dashed: bool = False


def color(n: int) -> str:
    """The colour of the n-th run (the palette repeats after eight)."""
    return PALETTE[n % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) * 0.1 or 1.0)
    raw = (high - low) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def fmt(value: float) -> str:
    """A short label: 0.25, 1.5k, 3.2e-05."""
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    if a < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3g}"


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels with as many decimals as the tick step needs, so close ticks never read the same."""
    step = min((b - a for a, b in zip(ticks, ticks[1:])), default=1.0) or 1.0
    if max(abs(t) for t in ticks) >= 1e5:
        return [fmt(t) for t in ticks]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if decimals > 5:
        return [f"{t:.2e}" for t in ticks]
    return [f"{t:.{decimals}f}" for t in ticks]


def line_chart(
    title: str,
    series: list[Series],
    *,
    metric: str = "",
    width: int = 420,
    height: int = 210,
    x_label: str = "step",
    y_range: tuple[float | None, float | None] = (None, None),
) -> str:
    """An SVG line chart of ``series``; an empty one says that there is no data."""
    left, right, top, bottom = 52, 12, 26, 30
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in series for x, y in s.points if y is not None] + [b[0] for s in series for b in s.bars]
    ys = [y for s in series for _, y in s.points if y is not None] + [
        v for s in series for b in s.bars for v in b[1:]
    ]
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" data-metric="{escape(metric)}" '
        f'aria-label="{escape(title)}">',
        f'<text class="chart-title" x="{left}" y="16" font-size="13" font-weight="600">'
        f"{escape(title)}</text>",
    ]
    if not xs:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888" font-size="12">'
            "no data yet</text></svg>"
        )
        return "".join(out)
    y_lo = min(ys) if y_range[0] is None else min(y_range[0], min(ys))
    y_hi = max(ys) if y_range[1] is None else max(y_range[1], max(ys))
    y_ticks = nice_ticks(y_lo, y_hi)
    x_lo, x_hi = min(xs), max(xs)
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, 6) if x_lo <= t <= x_hi] or [x_lo]
    if all(float(x).is_integer() for x in xs):
        x_ticks = [t for t in x_ticks if float(t).is_integer()] or [x_lo]
    y0, y1 = y_ticks[0], y_ticks[-1]
    span_x = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return left + (x - x_lo) / span_x * pw if x_hi > x_lo else left + pw / 2

    def py(y: float) -> float:
        return top + (1 - (y - y0) / ((y1 - y0) or 1.0)) * ph

    out.append('<g class="axes" font-size="10" fill="#666">')
    for t, label in zip(y_ticks, tick_labels(y_ticks)):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e4e4e4"/>'
            f'<text x="{left - 4}" y="{py(t) + 3:.1f}" text-anchor="end">{label}</text>'
        )
    for t, label in zip(x_ticks, tick_labels(x_ticks)):
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 13}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{left + pw}" y="{height - 3}" text-anchor="end">{escape(x_label)}</text></g>')
    for s in series:
        out.append(_series(s, px, py))
    out.append("</svg>")
    return "".join(out)


def _series(s: Series, px, py) -> str:
    parts = [f'<g class="series-group" data-run="{escape(s.key)}">']
    d, pen_up = [], True
    for x, y in s.points:
        if y is None:
            pen_up = True
            continue
        d.append(f"{'M' if pen_up else 'L'}{px(x):.1f},{py(y):.1f}")
        pen_up = False
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    if d:
        parts.append(
            f'<path class="series" data-run="{escape(s.key)}" d="{" ".join(d)}" fill="none" '
            f'stroke="{s.color}" stroke-width="1.8"{dash}><title>{escape(s.label)}</title></path>'
        )
    valid = [(x, y) for x, y in s.points if y is not None]
    if len(valid) <= MARKERS_UP_TO:
        for x, y in valid:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{2.6 if len(valid) > 1 else 3.5}" '
                f'fill="{s.color}"><title>{escape(s.label)} · {fmt(x)}: {fmt(y)}</title></circle>'
            )
    for x, low, high in s.bars:
        parts.append(
            f'<line class="ci" x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" '
            f'stroke="{s.color}" stroke-width="1.4"><title>{escape(s.label)} · {fmt(x)}: 95% CI '
            f"{fmt(low)} to {fmt(high)}</title></line>"
        )
    parts.append("</g>")
    return "".join(parts)
