"""Template helpers for the trust score section: explained components and the history chart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from trustmetrics.methodology import METHODOLOGY
from trustmetrics.models import TrustScore

register = template.Library()


@register.simple_tag
def trust_components(score: TrustScore) -> list[dict[str, Any]]:
    """The score's components in methodology order, each with its weight and one-line explanation."""
    rows = []
    for comp in METHODOLOGY.components:
        value = score.components.get(comp.key)
        if value is None:
            continue
        rows.append(
            {
                "key": comp.key,
                "title": comp.title,
                "value": value,
                "weight": round(comp.weight * 100),
                "summary": comp.summary,
            }
        )
    return rows


def _tip(score: TrustScore) -> str:
    parts = [f"{score.computed_at:%d %b %Y %H:%M} UTC", f"Overall {score.overall:.1f} ({score.label})"]
    for comp in METHODOLOGY.components:
        if comp.key in score.components:
            parts.append(f"{comp.title} {score.components[comp.key]:.0f}")
    parts.append(f"Confidence {score.confidence * 100:.0f}%")
    if score.reason:
        parts.append(score.reason)
    return "\n".join(parts)


@register.simple_tag
def trust_chart(scores: Sequence[TrustScore], width: int = 640, height: int = 200) -> SafeString:
    """Server-rendered SVG of overall scores over time, readable without JavaScript; points carry tooltips."""
    if not scores:
        return SafeString("")
    left, right, top, bottom = 34, 12, 10, 24
    t0, t1 = scores[0].computed_at.timestamp(), scores[-1].computed_at.timestamp()
    span = (t1 - t0) or 1.0
    inner_w, inner_h = width - left - right, height - top - bottom

    def xy(s: TrustScore) -> tuple[float, float]:
        x = left + ((s.computed_at.timestamp() - t0) / span * inner_w if len(scores) > 1 else inner_w / 2)
        y = top + (1 - s.overall / 100) * inner_h
        return round(x, 1), round(y, 1)

    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/><text x="{}" y="{}" class="axis">{}</text>',
        (
            (
                left,
                top + (1 - v / 100) * inner_h,
                width - right,
                top + (1 - v / 100) * inner_h,
                left - 6,
                top + (1 - v / 100) * inner_h + 4,
                v,
            )
            for v in (0, 50, 100)
        ),
    )
    points = " ".join(f"{x},{y}" for x, y in map(xy, scores))
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="4" tabindex="0" data-tip="{}"><title>{}</title></circle>',
        ((*xy(s), _tip(s), _tip(s)) for s in scores),
    )
    first, last = scores[0], scores[-1]
    return format_html(
        '<figure class="trust-chart" data-trust-chart>'
        '<svg viewBox="0 0 {w} {h}" role="img" aria-label="{label}">{grid}'
        '<text x="{left}" y="{by}" class="axis start">{ta}</text>'
        '<text x="{xr}" y="{by}" class="axis end">{tb}</text>'
        '<polyline points="{pts}" class="line"/>{dots}</svg>'
        '<div class="trust-tip" role="status" hidden></div>'
        "<figcaption>Overall score history ({n} runs): {a} on {da} to {b} on {db}. "
        "Hover or tab to a point for its components.</figcaption></figure>",
        w=width,
        h=height,
        grid=grid,
        left=left,
        xr=width - right,
        by=height - 6,
        pts=points,
        dots=dots,
        n=len(scores),
        label=f"Score history from {first.overall:.1f} to {last.overall:.1f}",
        a=f"{first.overall:.1f}",
        da=f"{first.computed_at:%d %b}",
        ta=f"{first.computed_at:%d %b %H:%M}",
        b=f"{last.overall:.1f}",
        db=f"{last.computed_at:%d %b}",
        tb=f"{last.computed_at:%d %b %H:%M}",
    )
