"""Reads of the alerts app: a trader's watchlists, alerts and past notifications; the evaluator's rules."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, Subquery

from alerts import engine
from alerts.models import Alert, Notification, Watchlist
from brokers.models import AccountType, Broker, BrokerInstrument, Instrument
from events.models import EventReport, EventReportRow
from marketdata.models import FeedConfig
from marketdata.selectors import feed_accounts
from trustmetrics.models import TrustScore

HISTORY_LIMIT = 100


def watchlists_for(*, user: AbstractBaseUser | AnonymousUser) -> list[Watchlist]:
    if not user.is_authenticated:
        return []
    return list(Watchlist.objects.filter(user_id=user.pk).prefetch_related("brokers", "instruments"))


def alerts_for(*, user: AbstractBaseUser | AnonymousUser) -> list[Alert]:
    if not user.is_authenticated:
        return []
    return list(Alert.objects.filter(user_id=user.pk).select_related("broker", "instrument", "watchlist", "account"))


def notifications_for(*, user: AbstractBaseUser | AnonymousUser, limit: int = HISTORY_LIMIT) -> list[Notification]:
    if not user.is_authenticated:
        return []
    return list(Notification.objects.filter(user_id=user.pk)[:limit])


def alert_rules_active() -> tuple[list[engine.Rule], dict[str, float]]:
    """Every active alert as the evaluator's rule, with the brokers and instruments it covers, and pip sizes."""
    quoted: dict[str, set[str]] = {}
    for slug, symbol in BrokerInstrument.objects.values_list("broker__slug", "instrument__symbol"):
        quoted.setdefault(slug, set()).add(symbol)
    rules = []
    qs = Alert.objects.filter(active=True).select_related("broker", "instrument", "watchlist", "account")
    feeds = _account_alert_feeds()
    own_feeds = _accounts_with_own_feed()
    watch_brokers: dict[int, set[str]] = {}
    watch_instruments: dict[int, set[str]] = {}
    for wid, slug in Watchlist.brokers.through.objects.values_list("watchlist_id", "broker__slug"):
        watch_brokers.setdefault(wid, set()).add(slug)
    for wid, symbol in Watchlist.instruments.through.objects.values_list("watchlist_id", "instrument__symbol"):
        watch_instruments.setdefault(wid, set()).add(symbol)
    for a in qs.iterator(chunk_size=2000):
        if a.watchlist_id is not None:
            brokers = frozenset(watch_brokers.get(a.watchlist_id, ()))
            instruments = frozenset(watch_instruments.get(a.watchlist_id, ()))
        else:
            assert a.broker is not None
            brokers, instruments = frozenset({a.broker.slug}), frozenset()
        if a.instrument is not None:
            instruments = frozenset({a.instrument.symbol})
        account, offset, account_id = "", 0.0, 0
        if a.account is not None:
            feed = feeds.get(a.account.broker_id)
            account = a.account.name
            if feed is not None and a.account_id == feed.pk:
                pass  # the live channels carry the broker's feed account (marketdata.selectors.feed_accounts)
            elif a.account_id in own_feeds:
                account_id = a.account.pk  # measured on its own feed: its own quotes, not a derived figure
            elif feed is not None:
                offset = float(a.account.spread_markup_pips - feed.spread_markup_pips)
        rules.append(
            engine.Rule(
                id=a.pk,
                user_id=a.user_id,
                kind=a.kind,
                brokers=brokers,
                instruments=instruments,
                threshold_pips=float(a.threshold_pips or 0),
                for_s=float(a.for_seconds),
                score_points=float(a.score_points or 0),
                account=account,
                offset_pips=offset,
                account_id=account_id,
            )
        )
    pips = {symbol: float(pip) for symbol, pip in Instrument.objects.values_list("symbol", "pip_size")}
    return rules, pips


def _account_alert_feeds() -> dict[int, AccountType | None]:
    """Feed accounts of the brokers that have account alerts (one read, whatever the number of alerts)."""
    ids = Alert.objects.filter(active=True, account__isnull=False).values("broker_id")
    brokers = list(Broker.objects.filter(pk__in=ids).prefetch_related("account_types"))
    return feed_accounts(brokers=brokers) if brokers else {}


def _accounts_with_own_feed() -> set[int]:
    """Accounts an enabled feed carries: the ingestor publishes their quotes on their own channel
    (marketdata.keys.account_channel) unless the account is its broker's feed account."""
    return set(
        FeedConfig.objects.filter(
            enabled=True, account_id__in=Alert.objects.filter(active=True, account__isnull=False).values("account_id")
        )
        .values_list("account_id", flat=True)
        .distinct()
    )


def scores_after(*, after_id: int) -> list[tuple[int, str, float, float | None]]:
    """New trust scores after the given row id: (id, broker slug, score, the broker's previous score)."""
    previous = TrustScore.objects.filter(broker=OuterRef("broker"), computed_at__lt=OuterRef("computed_at")).order_by(
        "-computed_at"
    )
    rows = (
        TrustScore.objects.filter(pk__gt=after_id)
        .annotate(previous=Subquery(previous.values("overall")[:1]))
        .order_by("pk")
        .values_list("pk", "broker__slug", "overall", "previous")
    )
    return list(rows[:10_000])


def scores_last_id() -> int:
    return TrustScore.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def reports_after(*, after_id: int) -> list[tuple[int, int, str, str]]:
    """Event reports stored after the given row id, one row per broker measured in each:
    (report id, event id, broker slug, title)."""
    reports = list(
        EventReport.objects.filter(pk__gt=after_id)
        .select_related("event")
        .order_by("pk")
        .only("pk", "event__name", "event__currency", "event__scheduled_at")[:100]
    )
    brokers: dict[int, set[str]] = {}
    for report_id, slug in EventReportRow.objects.filter(report__in=reports).values_list("report_id", "broker__slug"):
        brokers.setdefault(report_id, set()).add(slug)
    return [
        (r.pk, r.event_id, slug, f"{r.event.name} ({r.event.currency}, {r.event.scheduled_at:%Y-%m-%d %H:%M} UTC)")
        for r in reports
        for slug in sorted(brokers.get(r.pk, ()))
    ]


def reports_last_id() -> int:
    return EventReport.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
