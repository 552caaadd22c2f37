from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.models import BrokerInstrument
from marketdata.models import SpreadBar
from trustmetrics import services as trust_services


@pytest.fixture
def measured(demo):
    """The demo brokers with two hours of measured spreads each and one scoring run."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    bars = []
    for i, bi in enumerate(BrokerInstrument.objects.select_related("instrument")):
        pip = float(bi.instrument.pip_size)
        for h in (2, 3):
            mean = pip * (1 + (i % 7) / 10 + h / 10)
            bars.append(
                SpreadBar(
                    broker_id=bi.broker_id,
                    instrument_id=bi.instrument_id,
                    resolution=SpreadBar.Resolution.HOUR,
                    start=now - timedelta(hours=h),
                    open=mean,
                    high=mean * 2,
                    low=mean / 2,
                    close=mean,
                    mean=mean,
                    count=100 + i,
                    dev_min=-pip,
                    dev_max=pip,
                    duration=3600.0,
                    dev_count=10,
                )
            )
    SpreadBar.objects.bulk_create(bars)
    trust_services.trust_scores_compute(as_of=now)
    return demo
