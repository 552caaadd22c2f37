from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from django.urls import reverse

from brokers.models import Broker


def public_urls() -> Iterator[str]:
    """The parameterised public pages of this app, for the prerender command: profiles and compare pairs.

    Pages without parameters (home, directory, the compare picker) are found by pagecache itself.
    """
    slugs = list(Broker.objects.filter(status=Broker.Status.ACTIVE).order_by("name").values_list("slug", flat=True))
    for slug in Broker.objects.order_by("name").values_list("slug", flat=True):
        yield reverse("brokers:profile", kwargs={"slug": slug})
    for a, b in combinations(slugs, 2):
        yield f"{reverse('brokers:compare')}?brokers={a},{b}"
