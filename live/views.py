from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from common import cachetags
from live import board as live_board
from live.forms import BoardPreferenceForm
from live.selectors import BoardChoice, board_preference_get
from live.services import board_preference_set
from pagecache.isr import regenerated_page, tag_response

PUBLIC_REVALIDATE_S = 5  # the shared copy is regenerated this often, and the page polls for it (below)
PUBLIC_REFRESH_MS = 5000


def _public_board(request: HttpRequest) -> HttpResponse:
    """What anonymous visitors get: the last known spreads, rendered for everyone and cached."""
    response = TemplateResponse(
        request,
        "live/board_public.html",
        {
            "board": live_board.board_build(choice=BoardChoice([], [])),
            "public_config": {"refreshMs": PUBLIC_REFRESH_MS},
        },
    )
    tag_response(response, cachetags.ALL, cachetags.LIVE_BOARD)
    return response


_public_page = regenerated_page(revalidate=PUBLIC_REVALIDATE_S)(_public_board)


@never_cache
def _trader_board(request: HttpRequest) -> HttpResponse:
    choice = board_preference_get(user=request.user)
    built = live_board.board_build(choice=choice)
    form = BoardPreferenceForm(
        initial={"instruments": choice.instruments, "brokers": choice.brokers},
        instruments=built.all_instruments,
        brokers=[(b.slug, b.name) for b in built.all_brokers],
    )
    return render(request, "live/board.html", {"board": built, "config": built.as_config(), "form": form})


def board(request: HttpRequest) -> HttpResponseBase:
    if request.user.is_authenticated:
        return _trader_board(request)
    return _public_page(request)


# Background regeneration looks the page up by URL: point it at the public version.
board.page_spec = _public_page.page_spec  # type: ignore[attr-defined]


@login_required
@require_POST
def preferences(request: HttpRequest) -> HttpResponse:
    form = BoardPreferenceForm(
        request.POST,
        instruments=sorted(live_board.instrument_universe()),
        brokers=[(c.slug, c.label) for c in live_board.broker_columns()],
    )
    if not form.is_valid():
        messages.error(
            request,
            "That choice could not be saved: " + "; ".join(str(e) for errors in form.errors.values() for e in errors),
        )
        return redirect("live:board")
    board_preference_set(
        user=request.user,  # type: ignore[arg-type]
        instruments=form.cleaned_data["instruments"],
        brokers=form.cleaned_data["brokers"],
    )
    messages.success(request, "Board saved.")
    return redirect("live:board")
