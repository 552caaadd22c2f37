from __future__ import annotations

from urllib.parse import urlencode

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


@regenerated_page(params=("account",))
def spreads(request: HttpRequest, slug: str, symbol: str) -> HttpResponse:
    broker = Broker.objects.filter(slug=slug).prefetch_related("account_types").first()
    instrument = Instrument.objects.filter(symbol=symbol.upper(), brokers=broker).first() if broker else None
    if broker is None or instrument is None:
        raise Http404("No such broker or instrument")
    account = None
    name = request.GET.get("account", "").strip()
    if name:  # one of the broker's accounts, by name as the page's links give it (any case)
        account = next((a for a in broker.account_types.all() if a.name.casefold() == name.casefold()), None)
        if account is None:
            raise Http404(f"{broker.name} has no account of that name")
    history = selectors.spread_history(broker=broker, instrument=instrument, now=timezone.now(), account=account)
    others = Instrument.objects.filter(brokers=broker).order_by("sort_order", "symbol")
    response = TemplateResponse(
        request,
        "events/spreads.html",
        {
            "h": history,
            "others": others,
            "sessions": spreadstats.SESSIONS,
            "spans": list(selectors.SPREAD_SPANS),
            # An account asked for by name with no bars: it has no feed of its own (say so, not empty charts only).
            "unmeasured": account is not None and not any(history.series.values()),
            # The links keep the account the reader chose; the feed account's page has no parameter.
            "account_query": f"?{urlencode({'account': account.name})}" if account is not None else "",
            "account_csv": f"&{urlencode({'account': account.name})}" if account is not None else "",
        },
    )
    tag_response(response, cachetags.ALL, cachetags.broker(broker.pk))
    return response
