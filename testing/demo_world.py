"""A small but complete demo world for page-level checks (accessibility tests, Lighthouse benchmark):
the demo brokers, the last two days of synthetic bars, two days around the latest US high-impact
release with that release's stress report, trust scores with a short history, and a trader account.
Seconds to build, unlike scripts/demo.sh's 30 simulated days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

SYMBOLS = ["EURUSD", "USDJPY", "GBPUSD"]
TRADER = ("trader", "a11y-trader-password-1")


@dataclass(frozen=True)
class DemoWorld:
    event_report_path: str


def _latest_us_release(now: datetime) -> datetime:
    from simulator.calendar import recurring_events

    events = recurring_events((now - timedelta(days=70)).date(), now.date())
    before_us = (now.timestamp() - 7200) * 1e6  # its report window (-60 to +30 minutes) has closed
    done = [e for e in events if e.impact == "high" and e.currency == "USD" and e.at_us < before_us]
    return datetime.fromtimestamp(max(e.at_us for e in done) / 1e6, tz=UTC)


def demo_world_build(*, now: datetime | None = None) -> DemoWorld:
    from django.contrib.auth import get_user_model

    from brokers.services import demo_seed
    from events.services import event_report_generate
    from marketdata.models import EconomicEvent
    from trustmetrics.services import trust_scores_compute
    from trustmetrics.synthetic_load import synthetic_market_write

    now = now or timezone.now()
    demo_seed()
    release = _latest_us_release(now)
    windows = {release.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)}
    windows.add((now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0))
    for start in sorted(windows):
        synthetic_market_write(
            start=start, days=2, symbols=SYMBOLS, news_before=timedelta(minutes=60), news_after=timedelta(minutes=30)
        )
    for hours in (48, 24, 0):  # a few points: the profile draws its score chart
        trust_scores_compute(as_of=now - timedelta(hours=hours))
    event = EconomicEvent.objects.get(scheduled_at=release, currency="USD", impact=EconomicEvent.Impact.HIGH)
    if event_report_generate(event_id=event.pk, now=now) is None:
        raise RuntimeError(f"no stress report for {event}")
    User = get_user_model()
    if not User.objects.filter(username=TRADER[0]).exists():
        User.objects.create_user(TRADER[0], f"{TRADER[0]}@brokerwatch.example", TRADER[1])
    return DemoWorld(event_report_path=reverse("events:detail", kwargs={"event_id": event.pk}))
