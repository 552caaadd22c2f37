"""What search engines and the prerender command know of this app's public pages.

``/sitemap.xml`` (django.contrib.sitemaps) lists the site's pages and every broker profile.
Compare pages are prerendered only for popular pairs: each active broker with the few best-scored
others, so the work grows with the broker count, not its square; any other pair is regenerated on
its first visit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from brokers.models import Broker
from brokers.selectors import broker_top

POPULAR_PEERS = 3  # compare pages prerendered per broker: with this many of the best-scored others


class PageSitemap(Sitemap[str]):
    changefreq = "hourly"
    priority = 0.8

    def items(self) -> list[str]:
        return ["brokers:home", "brokers:directory", "brokers:compare", "live:board", "trustmetrics:methodology"]

    def location(self, item: str) -> str:
        return reverse(item)


class BrokerSitemap(Sitemap[Broker]):
    changefreq = "daily"
    priority = 0.6

    def items(self) -> list[Broker]:
        return list(Broker.objects.order_by("name"))

    def location(self, item: Broker) -> str:
        return reverse("brokers:profile", kwargs={"slug": item.slug})

    def lastmod(self, item: Broker) -> datetime:
        return item.updated_at


SITEMAPS: dict[str, type[Sitemap[str]] | type[Sitemap[Broker]]] = {"pages": PageSitemap, "brokers": BrokerSitemap}


def popular_compare_pairs(*, peers: int = POPULAR_PEERS) -> list[tuple[str, str]]:
    """Each active broker paired with the `peers` best-scored other active brokers, each pair once."""
    best = [b.slug for b in broker_top(limit=peers + 1)]
    active = Broker.objects.filter(status=Broker.Status.ACTIVE).order_by("name").values_list("slug", flat=True)
    pairs: dict[frozenset[str], tuple[str, str]] = {}
    for slug in active:
        for other in [s for s in best if s != slug][:peers]:
            pairs.setdefault(frozenset((slug, other)), (slug, other))
    return list(pairs.values())


def public_urls() -> Iterator[str]:
    """The parameterised public pages of this app, for the prerender command: profiles and popular pairs.

    Pages without parameters (home, directory, the compare picker) are found by pagecache itself.
    """
    for slug in Broker.objects.order_by("name").values_list("slug", flat=True):
        yield reverse("brokers:profile", kwargs={"slug": slug})
    for a, b in popular_compare_pairs():
        yield f"{reverse('brokers:compare')}?brokers={a},{b}"
