"""The account page for watchlists and alerts, with the trader's past alerts."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alerts import selectors, services
from alerts.forms import AlertForm, WatchlistForm
from common import metrics


def _page(
    request: HttpRequest,
    *,
    watchlist_form: WatchlistForm | None = None,
    alert_form: AlertForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "watchlists": selectors.watchlists_for(user=request.user),
        "alerts": selectors.alerts_for(user=request.user),
        "notifications": selectors.notifications_for(user=request.user),
        "watchlist_form": watchlist_form or WatchlistForm(),
        "alert_form": alert_form or AlertForm(user_id=request.user.pk, initial={"email": True}),
    }
    return render(request, "alerts/index.html", context, status=status)


@never_cache
@login_required
def index(request: HttpRequest) -> HttpResponse:
    return _page(request)


@never_cache
@login_required
@require_POST
def watchlist_create(request: HttpRequest) -> HttpResponse:
    form = WatchlistForm(request.POST)
    if not form.is_valid():
        metrics.incr("bad_form")
        return _page(request, watchlist_form=form, status=400)
    try:
        services.watchlist_create(
            user=request.user,  # type: ignore[arg-type]
            name=form.cleaned_data["name"],
            brokers=form.cleaned_data["brokers"],
            instruments=form.cleaned_data["instruments"],
        )
    except IntegrityError:
        form.add_error("name", "You already have a watchlist with this name.")
        return _page(request, watchlist_form=form, status=400)
    messages.success(request, "Watchlist saved.")
    return redirect("alerts:index")


@login_required
@require_POST
def watchlist_delete(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    services.watchlist_delete(user=request.user, watchlist_id=watchlist_id)  # type: ignore[arg-type]
    messages.success(request, "Watchlist deleted, with its alerts.")
    return redirect("alerts:index")


@never_cache
@login_required
@require_POST
def alert_create(request: HttpRequest) -> HttpResponse:
    form = AlertForm(request.POST, user_id=request.user.pk)
    if not form.is_valid():
        metrics.incr("bad_form")
        return _page(request, alert_form=form, status=400)
    data = form.cleaned_data
    try:
        services.alert_create(
            user=request.user,  # type: ignore[arg-type]
            kind=data["kind"],
            broker=data["broker"],
            watchlist=data["watchlist"],
            instrument=data["instrument"],
            account=data["account"],
            threshold_pips=data["threshold_pips"],
            for_seconds=data["for_seconds"] or 0,
            score_points=data["score_points"],
            email=data["email"],
        )
    except ValidationError as exc:
        for message in exc.messages:
            form.add_error(None, message)
        return _page(request, alert_form=form, status=400)
    messages.success(request, "Alert set.")
    return redirect("alerts:index")


@login_required
@require_POST
def alert_delete(request: HttpRequest, alert_id: int) -> HttpResponse:
    services.alert_delete(user=request.user, alert_id=alert_id)  # type: ignore[arg-type]
    messages.success(request, "Alert deleted.")
    return redirect("alerts:index")
