from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def score_band(score: float | None) -> str:
    if score is None:
        return "none"
    return "high" if score >= 70 else "mid" if score >= 40 else "low"


@register.filter
def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def component_title(name: str) -> str:
    return name.replace("_", " ").capitalize()


@register.filter
def split_csv(value: str) -> list[str]:
    return value.split(",")


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.filter
def compare_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if isinstance(value, Decimal):
        return f"{value:,.0f}" if value == value.to_integral() else f"{value:,.2f}"
    return str(value)


@register.simple_tag
def score_chart(scores: list[Any], width: int = 600, height: int = 160) -> SafeString:
    """Server-rendered SVG line of overall scores over time; no JavaScript needed to read it."""
    if len(scores) < 2:
        return SafeString("")
    pad = 24
    t0, t1 = scores[0].computed_at.timestamp(), scores[-1].computed_at.timestamp()
    span = (t1 - t0) or 1.0

    def xy(s: Any) -> tuple[float, float]:
        x = pad + (s.computed_at.timestamp() - t0) / span * (width - 2 * pad)
        y = height - pad - s.overall / 100 * (height - 2 * pad)
        return round(x, 1), round(y, 1)

    points = " ".join(f"{x},{y}" for x, y in map(xy, scores))
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>',
        ((*xy(s), f"{s.computed_at:%Y-%m-%d %H:%M}", f"{s.overall:.1f}") for s in scores),
    )
    first, last = scores[0], scores[-1]
    return format_html(
        '<figure class="score-chart"><svg viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        '<line x1="{p}" y1="{mid}" x2="{xr}" y2="{mid}" class="grid"/>'
        '<polyline points="{pts}" class="line"/>{dots}</svg>'
        "<figcaption>Score history: {a:.1f} on {da:%d %b} to {b:.1f} on {db:%d %b}</figcaption></figure>",
        w=width,
        h=height,
        p=pad,
        xr=width - pad,
        mid=height / 2,
        pts=points,
        dots=dots,
        label=f"Score history from {first.overall:.1f} to {last.overall:.1f}",
        a=first.overall,
        da=first.computed_at,
        b=last.overall,
        db=last.computed_at,
    )


@register.filter
def usd(value: float | Decimal | None) -> str:
    """A cost in dollars and cents, the one format every page uses for the same figure."""
    if value is None:
        return "–"
    amount = float(value)
    sign = "−" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@register.filter
def lots(value: float | Decimal | None) -> str:
    """A lot size as its owner typed it: 0.01 lot, 1 lot (no trailing zeros from the three stored decimals)."""
    if value is None:
        return "–"
    return f"{Decimal(str(value)).normalize():f} lot"


@register.filter
def lot_count(value: float | None) -> str:
    """An order's size in lots as a trader would say it: 1 lot, 1.05 lots, 1,000 lots (up to six decimals, none
    trailing: floatformat:"-4g" showed 1.05 lots as 1.0500)."""
    if value is None:
        return "–"
    shown = Decimal(str(round(float(value), 6))).normalize()
    return f"{shown:,f} lot{'' if shown == 1 else 's'}"


@register.filter
def pips(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


@register.filter
def attr_invalid(field: Any, auto_id: str) -> SafeString:
    """Render a bound field marked invalid and described by its error message."""
    return SafeString(field.as_widget(attrs={"aria-invalid": "true", "aria-describedby": f"{auto_id}-error"}))


@register.filter
def cost_for(costs: Any, symbol: str) -> list[Any]:
    return costs.for_symbol(symbol)  # type: ignore[no-any-return]


@register.filter
def best_names(rows: Any) -> str:
    """The rows marked best, as one readable list ("A (Raw), B (Standard)"): tied names never run together."""
    names = []
    for row in rows:
        if getattr(row, "best", False):
            account = getattr(row, "account", "")
            names.append(f"{row.name} ({account})" if account else str(row.name))
    return ", ".join(names)


@register.filter
def active_filters(form: Any) -> int:
    """How many of a filter form's fields (sorting aside) the visitor set: shown on the folded filters."""
    data = getattr(form, "data", {}) or {}
    return sum(1 for name in form.fields if name != "sort" and data.get(name) not in (None, "", "off"))


_RELATIVE_UNITS = (("year", 31536000), ("month", 2592000), ("day", 86400), ("hour", 3600), ("minute", 60))
_RELATIVE_NAMED = {
    ("minute", 0): "this minute",
    ("day", -1): "yesterday",
    ("day", 1): "tomorrow",
    ("month", -1): "last month",
    ("month", 1): "next month",
    ("year", -1): "last year",
    ("year", 1): "next year",
}


@register.filter
def relative_time(value: datetime | None) -> str:
    """The words static/js/charts.js puts beside a time (Intl.RelativeTimeFormat "en", numeric "auto"):
    rendered on the server too, so the page does not shift when the browser brings them up to date."""
    if value is None:
        return ""
    seconds = (value - timezone.now()).total_seconds()
    unit, size = next((u, s) for u, s in _RELATIVE_UNITS if abs(seconds) >= s or u == "minute")
    n = math.floor(seconds / size + 0.5)  # JavaScript's Math.round
    if (unit, n) in _RELATIVE_NAMED:
        return _RELATIVE_NAMED[(unit, n)]
    plural = "s" if abs(n) != 1 else ""
    return f"{-n} {unit}{plural} ago" if n < 0 else f"in {n} {unit}{plural}"
