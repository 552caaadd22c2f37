"""The relative time beside a score reads as the browser's Intl.RelativeTimeFormat would put it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.templatetags.broker_tags import relative_time


@pytest.mark.parametrize(
    ("ago", "words"),
    [
        (timedelta(seconds=10), "this minute"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=5), "5 minutes ago"),
        (timedelta(hours=1, minutes=40), "2 hours ago"),
        (timedelta(days=1), "yesterday"),
        (timedelta(days=3), "3 days ago"),
        (timedelta(days=40), "last month"),
        (timedelta(days=400), "last year"),
        (-timedelta(hours=3, minutes=1), "in 3 hours"),
    ],
)
def test_relative_time_reads_like_the_browsers_words(ago, words):
    assert relative_time(timezone.now() - ago) == words
