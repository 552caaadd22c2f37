from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from common import metrics
from execution import calc, selectors
from execution.forms import DEFAULT_UNIT, OrderForm

INITIAL = {"instrument": "EURUSD", "side": "buy", "size": "1", "unit": DEFAULT_UNIT}


def _estimate(form: OrderForm) -> calc.Estimate:
    data = form.cleaned_data
    return selectors.execution_estimate(instrument=data["instrument"], side=data["side"], size=data["units"])


@never_cache  # live market data: never stored by browsers or shared caches
@require_safe
def calculator(request: HttpRequest) -> HttpResponse:
    # The lot rules go with every answer: the size field warns of an off-grid size before Calculate.
    context: dict[str, Any] = {"live": request.user.is_authenticated, "lot_rules": selectors.lot_rules()}
    if not request.GET:
        context["form"] = OrderForm(initial=INITIAL)
        return render(request, "execution/calculator.html", context)
    form = OrderForm(request.GET)
    context["form"] = form
    if not form.is_valid():
        metrics.incr("bad_query")
        return render(request, "execution/calculator.html", context, status=400)
    try:
        estimate = _estimate(form)
    except selectors.MarketDataUnavailable:
        context["unavailable"] = True
        return render(request, "execution/calculator.html", context, status=503)
    instrument = form.cleaned_data["instrument"]
    as_of = datetime.now(tz=UTC)
    advice = calc.size_advice(estimate=estimate, lot_units=form.cleaned_data["lot"])
    if advice:
        form.fields["size"].widget.attrs["aria-describedby"] = "size-advice"
    context.update(
        # Beside the size field: which accounts cannot take this size as it is, and the nearest sizes they can.
        size_advice=[
            {
                "advice": advice,
                "below_url": None if advice.below is None else _with_size(request, lots=advice.below),
                "above_url": _with_size(request, lots=advice.above),
            }
            for advice in advice
        ],
    )
    context.update(
        estimate=estimate,
        # The rows and the split as the JSON and the API answer them: the page shows those very figures.
        answer=selectors.estimate_json(
            estimate=estimate,
            instrument=instrument,
            lot=form.cleaned_data["lot"],
            default_unit=DEFAULT_UNIT,
            as_of=as_of,
        ),
        as_of=as_of,
        instrument=instrument,
        price_digits=instrument.display_precision + 1,  # an average fill lands between ticks
        api_url=f"{reverse('execution:api')}?{request.GET.urlencode()}",
        config={
            "priceDigits": instrument.display_precision + 1,
            "staleAfterS": estimate.stale_after_s,
            "lot": form.cleaned_data["lot"],
        },
    )
    # Which account each leg of the split uses (one per broker), as the rows' split_size says.
    context["split_legs"] = [row for row in context["answer"]["brokers"] if row["split_size"] > 0]
    return render(request, "execution/calculator.html", context)


def _with_size(request: HttpRequest, *, lots: float) -> str:
    """This page's query with another size, in lots."""
    query = request.GET.copy()
    query["size"] = f"{lots:g}"
    query["unit"] = "lots"
    return f"{reverse('execution:calculator')}?{query.urlencode()}"


@never_cache
@require_safe
def api(request: HttpRequest) -> JsonResponse:
    form = OrderForm(request.GET)
    if not form.is_valid():
        metrics.incr("bad_query")
        errors = {name: list(errs) for name, errs in form.errors.items()}
        return JsonResponse({"error": form.error_text(), "fields": errors}, status=400)
    try:
        estimate = _estimate(form)
    except selectors.MarketDataUnavailable:
        return JsonResponse({"error": "Market data is unavailable right now; try again shortly."}, status=503)
    body = selectors.estimate_json(
        estimate=estimate,
        instrument=form.cleaned_data["instrument"],
        lot=form.cleaned_data["lot"],
        default_unit=DEFAULT_UNIT,
    )
    return JsonResponse(body)
