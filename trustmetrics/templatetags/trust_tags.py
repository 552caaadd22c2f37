"""Template helpers for the trust score section: explained components and the history chart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from trustmetrics import selectors
from trustmetrics.charts import Series, line_chart
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
    if score.band_low is not None and score.band_high is not None:
        parts.append(f"Uncertainty band {score.band_low:.0f}–{score.band_high:.0f}")
    if score.reason:
        parts.append(score.reason)
    return "\n".join(parts)


@register.simple_tag
def trust_history(broker: Any, days: int = 90) -> list[TrustScore]:
    """One score per day, oldest first (the chart and the change log read the same list)."""
    return selectors.trust_daily_history(broker_id=broker.pk, days=days)


@register.simple_tag
def trust_chart(scores: Sequence[TrustScore]) -> SafeString:
    """Server-rendered SVG of the daily overall score with its uncertainty band; readable without
    JavaScript, labels 12 px or more on a phone; points carry tooltips (static/js/charts.js)."""
    if not scores:
        return SafeString("")
    t0 = scores[0].computed_at.timestamp()

    def x(s: TrustScore) -> float:
        return (s.computed_at.timestamp() - t0) / 86400

    x1 = max(x(scores[-1]), 1.0)
    band = [(x(s), s.band_low, s.band_high) for s in scores if s.band_low is not None and s.band_high is not None]
    svg = line_chart(
        series=[
            Series(name="Overall score", points=[(x(s), s.overall) for s in scores], tips=[_tip(s) for s in scores])
        ],
        x_range=(0.0, x1),
        x_labels=[(0.0, f"{scores[0].computed_at:%-d %b}"), (x1, f"{scores[-1].computed_at:%-d %b}")],
        y_range=(0.0, 100.0),
        band=[(bx, float(lo), float(hi)) for bx, lo, hi in band],
        label=(
            f"Daily TrustMetrics score from {scores[0].overall:.1f} on {scores[0].computed_at:%-d %b} "
            f"to {scores[-1].overall:.1f} on {scores[-1].computed_at:%-d %b}"
        ),
    )
    return format_html(
        '<figure class="chart-figure" data-trust-chart>{}<div class="chart-tip" role="status" hidden></div>'
        "<figcaption>Daily score over {} days; the shaded band is the uncertainty band. "
        "Hover or tab to a point for its components.</figcaption></figure>",
        mark_safe(svg),  # noqa: S308 (line_chart escapes every text it writes)
        len(scores),
    )
