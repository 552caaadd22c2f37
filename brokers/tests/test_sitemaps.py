"""/sitemap.xml and /robots.txt, and which compare pages are prerendered."""

from __future__ import annotations

import pytest

from brokers.models import Broker
from brokers.sitemaps import POPULAR_PEERS, popular_compare_pairs, public_urls

pytestmark = pytest.mark.django_db


def test_the_sitemap_lists_every_broker_profile_and_the_main_pages(client, demo):
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    body = response.content.decode()
    for slug in Broker.objects.values_list("slug", flat=True):
        assert f"/brokers/{slug}/</loc>" in body
    assert "/brokers/</loc>" in body and "/methodology/</loc>" in body


def test_robots_txt_points_at_the_sitemap_and_keeps_crawlers_out_of_accounts(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "Sitemap: http://testserver/sitemap.xml" in text
    assert "Disallow: /accounts/" in text


def test_prerendered_compare_pages_grow_linearly_with_the_broker_count(demo):
    active = Broker.objects.filter(status=Broker.Status.ACTIVE).count()
    pairs = popular_compare_pairs()
    assert len(pairs) <= active * POPULAR_PEERS
    assert len({frozenset(p) for p in pairs}) == len(pairs)  # each pair once
    compare_urls = [u for u in public_urls() if u.startswith("/compare/")]
    assert len(compare_urls) == len(pairs) < active * (active - 1) // 2
