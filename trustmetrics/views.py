from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from common import cachetags
from pagecache.isr import regenerated_page, tag_response
from trustmetrics.methodology import METHODOLOGY


@regenerated_page()
def methodology(request: HttpRequest) -> HttpResponse:
    """The published methodology, rendered from the very object the engine scores with."""
    m = METHODOLOGY
    response = TemplateResponse(
        request,
        "trustmetrics/methodology.html",
        {
            "m": m,
            "components": [{"c": c, "weight": round(c.weight * 100)} for c in m.components],
            "labels": m.labels,
            "tiers": sorted(m.tier_points.items()),
            "statuses": sorted(m.licence_status_factor.items(), key=lambda kv: -kv[1]),
            "transparency": sorted(m.transparency_points.items(), key=lambda kv: -kv[1]),
            "window_days": m.window.days,
            "news_before_min": int(m.news_before.total_seconds() // 60),
            "news_after_min": int(m.news_after.total_seconds() // 60),
        },
    )
    tag_response(response, cachetags.ALL, cachetags.METHODOLOGY)
    return response
