"""Stylesheets written into the pages: each allowed by its hash in the policy of both lanes, none linked."""

from __future__ import annotations

import base64
import functools
import hashlib
import re

import pytest
from django.test import Client

from pagecache import inline, isr
from pagecache.tests.test_pagecache_asgi import fetch, header_map

PAGES = ["/", "/brokers/", "/brokers/kestrel-fx/", "/compare/?brokers=kestrel-fx,northwind-markets", "/methodology/"]


def _style_sources(policy: str) -> list[str]:
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("style-src "))
    return directive.split()[1:]


def _hash(css: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_inlined_stylesheet_is_allowed_by_its_hash_and_nothing_else_inline(demo, path):
    response = Client().get(path)
    assert response.status_code == 200
    body = response.content.decode()
    styles = re.findall(r"<style>(.*?)</style>", body, re.S)
    assert styles, "the site's stylesheet is written into the page"
    assert 'rel="stylesheet"' not in body  # no stylesheet request before the first paint
    sources = _style_sources(response["Content-Security-Policy"])
    assert "'unsafe-inline'" not in sources and "'self'" in sources
    for css in styles:
        assert _hash(css) in sources
    assert 'href="data:image/svg+xml,' in body  # the icon too: no request of its own
    assert 'src="/static/js/toast.' not in body  # alert toasts: only on a trader's pages


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_fast_lane_sends_the_same_style_hashes(demo):
    await fetch("/brokers/kestrel-fx/")
    fast = await fetch("/brokers/kestrel-fx/")
    assert header_map(fast)[b"x-page-cache"] == b"hit"
    sources = _style_sources(header_map(fast)[b"content-security-policy"].decode())
    for css in re.findall(r"<style>(.*?)</style>", fast["body"].decode(), re.S):
        assert _hash(css) in sources


@pytest.mark.django_db
def test_a_trader_gets_the_alert_toasts_script(demo, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("toast-trader"))
    client.get("/brokers/")  # cached for anonymous visitors; the trader's menu is swapped in
    assert 'src="/static/js/toast.' in client.get("/brokers/").content.decode()
    assert 'src="/static/js/toast.' in client.get("/live/").content.decode()


def test_a_changed_stylesheet_changes_every_page_key(monkeypatch):
    before = isr.page_key("/", "")
    real = inline._read.__wrapped__

    def edited(path: str) -> str:
        return real(path) + ("\n.new{}" if path == "css/site.css" else "")

    monkeypatch.setattr(inline, "_read", functools.lru_cache(edited))
    inline.forget_cached()
    try:
        assert isr.page_key("/", "") != before  # a copy with the old styles is never served with new hashes
    finally:
        monkeypatch.undo()
        inline.forget_cached()
    assert isr.page_key("/", "") == before


def test_only_the_listed_stylesheets_can_be_inlined():
    with pytest.raises(ValueError, match="INLINE_STYLES"):
        inline.inline_style_text("css/error.css")


def test_the_manifest_carries_the_same_icon_inline():
    import json
    from pathlib import Path

    from django.contrib.staticfiles import finders

    manifest = json.loads(Path(str(finders.find("site.webmanifest"))).read_text(encoding="utf-8"))
    # Its own copy of favicon.svg, so an installing browser fetches nothing for it: kept the same here.
    assert {"src": inline.data_uri("favicon.svg"), "sizes": "any", "type": "image/svg+xml"} in manifest["icons"]
