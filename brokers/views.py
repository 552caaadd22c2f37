from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from brokers import selectors
from brokers.forms import DirectoryFilterForm, parse_compare
from brokers.models import Broker
from common import cachetags, metrics
from pagecache.isr import regenerated_page, tag_response

LIST_TAGS = (cachetags.ALL, cachetags.BROKER_LIST)
DIRECTORY_PARAMS = tuple(DirectoryFilterForm.base_fields)


def _bad_request(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    metrics.incr("bad_query")
    return render(request, template, context, status=400)


@regenerated_page()
def home(request: HttpRequest) -> HttpResponse:
    response = TemplateResponse(
        request,
        "brokers/home.html",
        {"top": selectors.broker_top(limit=5), "counts": selectors.site_counts()},
    )
    tag_response(response, *LIST_TAGS)
    return response


@regenerated_page(params=DIRECTORY_PARAMS)
def directory(request: HttpRequest) -> HttpResponse:
    form = DirectoryFilterForm(request.GET, choices=selectors.filter_choices())
    valid = form.is_valid()
    # Invalid fields are left out; the valid ones still filter, so one typo does not wipe the list.
    filters = form.filters()
    context = {"form": form, "filters": filters, "entries": selectors.broker_directory(filters=filters)}
    # The download lists what the page lists: the valid filters only, as the API's parameters of the same names.
    shown = {k: request.GET[k] for k in DIRECTORY_PARAMS if request.GET.get(k) and k not in form.errors}
    context["csv_url"] = f"{reverse('api:brokers_list')}?{urlencode({**shown, 'format': 'csv'})}"
    if not valid:
        return _bad_request(request, "brokers/directory.html", context)
    response = TemplateResponse(request, "brokers/directory.html", context)
    tag_response(response, *LIST_TAGS)
    return response


@regenerated_page()
def profile(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        broker = selectors.broker_profile(slug=slug)
    except Broker.DoesNotExist:
        raise Http404("No broker with that name") from None
    response = TemplateResponse(
        request,
        "brokers/profile.html",
        {
            "broker": broker,
            "scores": selectors.broker_score_history(broker=broker),
            "spreads": selectors.broker_spread_history(broker=broker),
            "costs": selectors.broker_costs(broker=broker),
        },
    )
    tag_response(response, cachetags.ALL, cachetags.broker(broker.pk))
    return response


@require_safe
def profile_json(request: HttpRequest, slug: str) -> JsonResponse:
    """The profile's shared figures as JSON, from the same selectors as the pages."""
    try:
        broker = selectors.broker_profile(slug=slug)
    except Broker.DoesNotExist:
        metrics.incr("bad_query")
        return JsonResponse({"error": "No broker with that name."}, status=404)
    return JsonResponse(selectors.broker_figures(broker=broker))


# The picker sent with no box ticked and no JavaScript: ?brokers= and nothing else (compare.js says the
# same in the page instead). The page cache keeps that blank ?brokers= apart from a bare /compare/.
NO_BROKER_CHOSEN = "No broker chosen: tick two to four brokers, then Compare."


@regenerated_page(params=("brokers", "pick"), keep_blank=("brokers",))
def compare(request: HttpRequest) -> HttpResponse:
    picked = request.GET.getlist("pick")
    if picked:
        # The picker without JavaScript sends one ?pick= per box: send it to the shareable URL.
        return redirect(f"{request.path}?{urlencode({'brokers': ','.join(picked)}, safe=',')}")
    choices = selectors.compare_choices()
    raw = request.GET.get("brokers", "").strip()
    context: dict[str, object] = {"choices": choices, "selected": []}
    if "brokers" in request.GET and not raw:
        return _bad_request(request, "brokers/compare.html", {**context, "error": NO_BROKER_CHOSEN})
    if raw:
        slugs, error = parse_compare(raw, known={slug for slug, _ in choices})
        context["selected"] = slugs
        if error:
            return _bad_request(request, "brokers/compare.html", {**context, "error": error})
        if len(slugs) == 1:
            # Arriving from a profile's "compare with..." link: pick the others.
            context["hint"] = "Choose at least one more broker to compare with."
            response = TemplateResponse(request, "brokers/compare.html", context)
            tag_response(response, *LIST_TAGS)
            return response
        brokers, rows = selectors.broker_compare(slugs=slugs)
        csv_query = urlencode({"brokers": ",".join(b.slug for b in brokers), "format": "csv"}, safe=",")
        context.update(brokers=brokers, rows=rows, csv_url=f"{reverse('api:compare')}?{csv_query}")
        response = TemplateResponse(request, "brokers/compare.html", context)
        tag_response(response, cachetags.ALL, *(cachetags.broker(b.pk) for b in brokers))
        return response
    response = TemplateResponse(request, "brokers/compare.html", context)
    tag_response(response, *LIST_TAGS)
    return response
