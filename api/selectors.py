"""Reads of the API app: keys, and the tables its CSV downloads stream page by page.

The figures themselves come from the pages' selectors (see api/endpoints.py). Those return lists, read whole;
a streamed download needs the same rows as a queryset it can read a page at a time (api.stream.Window), so
the windows below restate the selector's query, and a test holds each download to the JSON answer, which
reads the page's selector, row for row (api/tests/test_api_stream.py).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import Max, Subquery
from django.db.models.functions import TruncDate

from api.models import ApiKey
from api.stream import Window
from brokers.models import Broker
from events.models import EventReport
from marketdata.models import EconomicEvent
from trustmetrics.models import TrustScore

KEY_CACHE_S = 60


def api_key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _cache_key(digest: str) -> str:
    return f"apikey:{digest}"


def api_key_user_id(*, raw: str) -> int | None:
    """The user id of an active key, or None. Looked up in the shared cache first: every keyed request asks."""
    if not raw or len(raw) > 200:
        return None
    digest = api_key_digest(raw)
    found = cache.get(_cache_key(digest))
    if found is not None:
        return int(found) or None  # 0: known not to be a key
    row = ApiKey.objects.filter(digest=digest, revoked_at__isnull=True).values_list("user_id", flat=True).first()
    api_key_remember(digest=digest, user_id=row)
    return row


def api_key_remember(*, digest: str, user_id: int | None) -> None:
    """Cache what the database said, unless something is cached already. Only add(), never set(): a
    lookup that read the key as active just before it was revoked must not overwrite the revocation's
    mark (api_key_forget), or the revoked key would work for another KEY_CACHE_S."""
    cache.add(_cache_key(digest), user_id or 0, KEY_CACHE_S)


def api_key_forget(*, digest: str) -> None:
    """Mark the key as not a key in the cache (after the revocation commits), for as long as a stale lookup
    could still try to cache it as valid."""
    cache.set(_cache_key(digest), 0, KEY_CACHE_S)


def api_keys_for(*, user: AbstractBaseUser | AnonymousUser) -> list[ApiKey]:
    if not user.is_authenticated:
        return []
    return list(ApiKey.objects.filter(user_id=user.pk))


def broker_id_for(*, slug: str) -> int | None:
    """The broker's id alone: a streamed table needs no more of it (broker_profile reads six tables)."""
    return Broker.objects.filter(slug=slug).values_list("pk", flat=True).first()


def scores_window(*, broker_id: int, limit: int) -> Window:
    """brokers.selectors.broker_score_history: the latest ``limit`` scoring runs, oldest first."""
    latest = TrustScore.objects.filter(broker_id=broker_id).order_by("-computed_at", "-pk").values("pk")[:limit]
    return Window(rows=TrustScore.objects.filter(pk__in=Subquery(latest)), order=("computed_at",))


def daily_scores_window(*, broker_id: int, days: int, now: datetime) -> Window:
    """trustmetrics.selectors.trust_daily_history: the day's last run of each UTC day since ``days`` ago."""
    runs = TrustScore.objects.filter(broker_id=broker_id, computed_at__gte=now - timedelta(days=days))
    last_per_day = runs.annotate(day=TruncDate("computed_at")).values("day").annotate(last=Max("computed_at"))
    # Read once, as the selector does: at most ``days`` times (PostgreSQL re-ran the grouping as a subquery
    # in every page's query: 38 s for two pages over 20,000 runs, load 5; 3.6 s for 3,334 rows read once).
    lasts = [r["last"] for r in last_per_day.order_by()]
    return Window(rows=runs.filter(computed_at__in=lasts), order=("computed_at",))


def event_reports_window(*, limit: int) -> Window:
    """events.selectors.event_report_list: the latest ``limit`` reports, latest first."""
    latest = EventReport.objects.order_by("-event__scheduled_at", "-pk").values("pk")[:limit]
    rows = EventReport.objects.filter(pk__in=Subquery(latest)).select_related("event", "best_broker", "worst_broker")
    return Window(rows=rows, order=("-event__scheduled_at",))


def events_window(*, since: datetime, until: datetime, currency: str | None, impact: str | None) -> Window:
    """marketdata.selectors.calendar_events in [since, until), of one currency and impact when given."""
    rows = EconomicEvent.objects.filter(scheduled_at__gte=since, scheduled_at__lt=until)
    if currency is not None:
        rows = rows.filter(currency__iexact=currency)
    if impact is not None:
        rows = rows.filter(impact=impact)
    return Window(rows=rows, order=("scheduled_at", "name"))
