from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from brokers.models import Instrument
from common import cachetags
from pagecache.isr import regenerated_page, tag_response
from trustmetrics.methodology import METHODOLOGY
from trustmetrics.scoring import critical_floor, off_market_cap_slope
from trustmetrics.selectors import trust_methodology_tables, trust_validation_stored
from trustmetrics.services import trust_validation_request


@regenerated_page()
def methodology(request: HttpRequest) -> HttpResponse:
    """The published methodology, rendered from the very object the engine scores with."""
    m = METHODOLOGY
    tracked = set(Instrument.objects.values_list("symbol", flat=True))
    validation = trust_validation_stored(methodology=m)
    if validation is None:  # computed in the background; the page is regenerated once they are stored
        trust_validation_request(methodology=m)
    response = TemplateResponse(
        request,
        "trustmetrics/methodology.html",
        {
            "m": m,
            # The reference tables, as their CSV downloads list them (api: /methodology/...).
            "tables": trust_methodology_tables(methodology=m),
            "labels": m.labels,
            # Only instruments the site tracks: the methodology knows more index CFDs than we list.
            "news_indices": [(sym, ccys) for sym, ccys in sorted(m.news_currencies.items()) if sym in tracked],
            "good_minimum": next(band.minimum for band in m.labels if band.name == "Good"),
            "window_days": m.window.days,
            "news_before_min": int(m.news_before.total_seconds() // 60),
            "news_after_min": int(m.news_after.total_seconds() // 60),
            "cap_slope": off_market_cap_slope(m),
            "cap_per_hour": off_market_cap_slope(m) / (m.window.days * 24 * 4),
            "stability_bound": m.stability_points_per_extra_share,
            "widening_share": round(100 * (1 - m.news_coverage_share)),
            "coverage_share": round(100 * m.news_coverage_share),
            "off_market_share": round(100 * m.integrity_off_market_share),
            "parts": {k: round(100 * v / sum(m.reliability_parts.values())) for k, v in m.reliability_parts.items()},
            "outage_zero_percent": round(100 * m.outage_zero_share, 1),
            "frozen_zero_percent": round(100 * m.frozen_zero_share, 1),
            "part_points": round(100 * (1 - m.weights["transparency"])),
            "critical_max": critical_floor(transparency=100.0, methodology=m),
            "validation": validation,
        },
    )
    tag_response(response, cachetags.ALL, cachetags.METHODOLOGY)
    return response
