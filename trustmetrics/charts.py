"""Server-rendered SVG line charts. Pure: strings in, an SVG string out (escaped), no Django.

Drawn in a small coordinate space (``WIDTH`` wide) with 14-unit text, so that when the SVG is scaled to a
phone's width (about 360 px) its labels stay at 12 px or more; CSS caps the width on a desktop.
Every chart is an ``role="img"`` with a label; pages put the same figures in a table next to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH = 400
FONT = 14


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None: a gap in the line
    css: str = "s0"
    tips: Sequence[str] = field(default_factory=tuple)  # one per point: a dot with a tooltip when given


def nice_max(value: float) -> float:
    """A round upper bound for a y axis (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def line_chart(
    *,
    series: Sequence[Series],
    x_range: tuple[float, float],
    x_labels: Sequence[tuple[float, str]],
    label: str,
    y_range: tuple[float, float] | None = None,
    height: int = 220,
    y_unit: str = "",
    marks: Sequence[tuple[float, str]] = (),
    band: Sequence[tuple[float, float, float]] = (),  # (x, low, high): a shaded band, e.g. uncertainty
) -> str:
    left, right, top, bottom = 46, 10, 12, 26
    inner_w, inner_h = WIDTH - left - right, height - top - bottom
    ys = [y for s in series for _, y in s.points if y is not None] + [hi for _, _, hi in band]
    y0, y1 = y_range if y_range is not None else (0.0, nice_max(max(ys, default=1.0)))
    x0, x1 = x_range
    span_x = (x1 - x0) or 1.0
    span_y = (y1 - y0) or 1.0

    def px(x: float) -> float:
        return round(left + (x - x0) / span_x * inner_w, 1)

    def py(y: float) -> float:
        return round(top + (1 - (min(max(y, y0), y1) - y0) / span_y) * inner_h, 1)

    out = [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" class="chart" font-size="{FONT}">'
    ]
    for i in range(3):
        v = y0 + span_y * i / 2
        out.append(f'<line x1="{left}" y1="{py(v)}" x2="{WIDTH - right}" y2="{py(v)}" class="grid"/>')
        out.append(
            f'<text x="{left - 4}" y="{py(v) + 5}" class="axis" text-anchor="end">{_fmt(v)}{escape(y_unit)}</text>'
        )
    for i, (x, text) in enumerate(x_labels):
        anchor = "start" if i == 0 and len(x_labels) > 1 else "end" if i == len(x_labels) - 1 and i else "middle"
        out.append(f'<text x="{px(x)}" y="{height - 6}" class="axis" text-anchor="{anchor}">{escape(text)}</text>')
    for x, text in marks:
        out.append(
            f'<line x1="{px(x)}" y1="{top}" x2="{px(x)}" y2="{top + inner_h}" class="mark">'
            f"<title>{escape(text)}</title></line>"
        )
    if band:
        upper = " ".join(f"{px(x)},{py(hi)}" for x, _, hi in band)
        lower = " ".join(f"{px(x)},{py(lo)}" for x, lo, _ in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" class="band"/>')
    for s in series:
        runs: list[list[str]] = [[]]
        for x, y in s.points:
            if y is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{px(x)},{py(y)}")
        out.append(f'<g class="{escape(s.css)}"><title>{escape(s.name)}</title>')
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline points="{" ".join(run)}" class="line"/>')
            elif run:
                x_, y_ = run[0].split(",")
                out.append(f'<circle cx="{x_}" cy="{y_}" r="2" class="dot"/>')
        for (x, y), tip in zip(s.points, s.tips, strict=False):
            if y is not None and tip:
                out.append(
                    f'<circle cx="{px(x)}" cy="{py(y)}" r="5" tabindex="0" class="point" data-tip="{escape(tip)}">'
                    f"<title>{escape(tip)}</title></circle>"
                )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
