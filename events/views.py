from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from brokers.models import Broker, Instrument
from common import cachetags
from events import selectors, spreadstats, stress
from events.models import EventReport
from pagecache.isr import regenerated_page, tag_response


@regenerated_page()
def archive(request: HttpRequest) -> HttpResponse:
    response = TemplateResponse(request, "events/archive.html", {"reports": selectors.event_report_list()})
    tag_response(response, cachetags.ALL, cachetags.EVENTS)
    return response


@regenerated_page()
def detail(request: HttpRequest, event_id: int) -> HttpResponse:
    try:
        report, sections = selectors.event_report_detail(event_id=event_id)
    except EventReport.DoesNotExist:
        raise Http404("No report for that release (yet)") from None
    response = TemplateResponse(
        request,
        "events/detail.html",
        {
            "report": report,
            "event": report.event,
            "sections": sections,
            "calm_min": stress.CALM_MIN,
            "window_before": stress.WINDOW_BEFORE_MIN,
            "window_after": stress.WINDOW_AFTER_MIN,
            "chart_before": stress.CHART_BEFORE_MIN,
            "recovery_factor": stress.RECOVERY_FACTOR,
            "gap_stress": stress.GAP_MINUTE_STRESS,
        },
    )
    tag_response(response, cachetags.ALL, cachetags.EVENTS, cachetags.event(event_id))
    return response


@regenerated_page()
def spreads(request: HttpRequest, slug: str, symbol: str) -> HttpResponse:
    broker = Broker.objects.filter(slug=slug).first()
    instrument = Instrument.objects.filter(symbol=symbol.upper(), brokers=broker).first() if broker else None
    if broker is None or instrument is None:
        raise Http404("No such broker or instrument")
    history = selectors.spread_history(broker=broker, instrument=instrument, now=timezone.now())
    others = Instrument.objects.filter(brokers=broker).order_by("sort_order", "symbol")
    response = TemplateResponse(
        request,
        "events/spreads.html",
        {"h": history, "others": others, "sessions": spreadstats.SESSIONS, "spans": list(selectors.SPREAD_SPANS)},
    )
    tag_response(response, cachetags.ALL, cachetags.broker(broker.pk))
    return response
