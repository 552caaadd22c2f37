"""Template helpers for event reports: the all-brokers spread chart and the profile's last releases."""

from __future__ import annotations

from datetime import UTC, datetime
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


def _day_label(t: float, span: str) -> str:
    at = datetime.fromtimestamp(t, tz=UTC)
    return f"{at:%H:%M}" if span == "24h" else f"{at:%-d %b}"


@register.simple_tag
def spread_chart(history: selectors.SpreadHistory, span: str) -> SafeString:
    points = history.series.get(span, [])
    if not points:
        return SafeString('<p class="empty-state">No spreads recorded in this period.</p>')
    t0, t1 = points[0][0], points[-1][0]
    svg = line_chart(
        series=[Series(name=f"{history.broker.name} {history.instrument.symbol}", points=points)],
        x_range=(t0, max(t1, t0 + 1)),
        x_labels=[(t0, _day_label(t0, span)), (t1, _day_label(t1, span))],
        label=f"{history.instrument.symbol} mean spread in pips at {history.broker.name}, last {span}",
    )
    return mark_safe(svg)  # noqa: S308 (line_chart escapes every text it writes)


@register.simple_tag
def hour_profile_chart(history: selectors.SpreadHistory) -> SafeString:
    hours = list(range(24))
    svg = line_chart(
        series=[
            Series(name="Median of the other brokers", points=list(zip(hours, history.peers, strict=True)), css="s1"),
            Series(name=history.broker.name, points=list(zip(hours, history.hours, strict=True)), css="s0"),
        ],
        x_range=(0, 23),
        x_labels=[(0, "00:00"), (12, "12:00"), (23, "23:00 UTC")],
        label=(
            f"{history.instrument.symbol} mean spread in pips by hour of day (UTC) at {history.broker.name} "
            "against the median of the other brokers, last 7 days"
        ),
    )
    return mark_safe(svg)  # noqa: S308 (line_chart escapes every text it writes)


@register.filter
def zip_lists(a: list[Any], b: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(a, b, strict=False))


@register.filter
def get_session(sessions: dict[str, Any], key: str) -> Any:
    return sessions.get(key, {})


@register.inclusion_tag("events/_spread_links.html")
def spread_links(broker: Any) -> dict[str, Any]:
    return {"broker": broker, "instruments": [bi.instrument for bi in broker.broker_instruments.all()]}
