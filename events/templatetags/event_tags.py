"""Template helpers for event reports: the all-brokers spread chart and the profile's last releases."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from events import selectors, stress
from events.models import EventReport
from trustmetrics.charts import Series, line_chart

register = template.Library()


@register.simple_tag
def event_chart(report: EventReport, section: selectors.InstrumentSection) -> SafeString:
    """Every broker's 1-minute spread from 15 min before to 30 min after: the calmest and the most
    stressed broker on this instrument drawn in colour, the others in grey."""
    rows = [r for r in section.rows if r.stress_ratio is not None]
    best = rows[0].broker.slug if rows else None
    worst = rows[-1].broker.slug if len(rows) > 1 else None
    names = {r.broker.slug: r.broker.name for r in section.rows}
    minutes = list(range(-stress.CHART_BEFORE_MIN, stress.WINDOW_AFTER_MIN))
    ordered = sorted(section.series.items(), key=lambda kv: (kv[0] in (best, worst), kv[0] == best))
    series = [
        Series(
            name=names.get(slug, slug),
            points=list(zip(minutes, values, strict=False)),
            css="best" if slug == best else "worst" if slug == worst else "other",
        )
        for slug, values in ordered
    ]
    svg = line_chart(
        series=series,
        x_range=(minutes[0], minutes[-1]),
        x_labels=[(-15, "−15 min"), (0, "release"), (29, "+30 min")],
        marks=[(0, "Release")],
        y_unit="",
        label=(
            f"{section.instrument.symbol} spread in pips of {len(series)} brokers from 15 minutes before to 30 "
            f"minutes after the release; calmest {names.get(best or '', '–')}, "
            f"most stressed {names.get(worst or '', '–')}"
        ),
    )
    return mark_safe(svg)  # noqa: S308 (line_chart escapes every text it writes)


@register.inclusion_tag("events/_broker_releases.html")
def broker_releases(broker: Any, limit: int = 5) -> dict[str, Any]:
    return {"releases": selectors.broker_last_releases(broker_id=broker.pk, limit=limit), "broker": broker}
