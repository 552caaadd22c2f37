"""An admin's edit of a release reaches the pages and the API at once, not when their copies expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.models import Broker
from events.models import EventReport
from marketdata.models import EconomicEvent


@pytest.mark.django_db
def test_renaming_a_release_in_admin_revalidates_the_report_list_and_its_csv(
    client, demo, django_capture_on_commit_callbacks
):
    at = timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)
    event = EconomicEvent.objects.create(name="Non-Farm Payrolls", currency="USD", impact="high", scheduled_at=at)
    EventReport.objects.create(event=event, generated_at=at, brokers_measured=2, best_broker=Broker.objects.first())
    path = "/api/v1/events/reports"
    assert client.get(path).json()[0]["name"] == "Non-Farm Payrolls"
    etag = client.get(path + "?format=csv")["ETag"]

    with django_capture_on_commit_callbacks(execute=True):
        event.name = "Nonfarm Payrolls (revised)"
        event.save()

    assert client.get(path).json()[0]["name"] == "Nonfarm Payrolls (revised)"  # not the copy cached for 30 s
    answer = client.get(path + "?format=csv", HTTP_IF_NONE_MATCH=etag)
    assert answer.status_code == 200, "a 304 would keep the old name in the reader's copy"
