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


def _sources(policy: str, directive: str) -> list[str]:
    found = next(d.strip() for d in policy.split(";") if d.strip().startswith(directive + " "))
    return found.split()[1:]


def _style_sources(policy: str) -> list[str]:
    return _sources(policy, "style-src")


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


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_the_one_inline_script_is_the_loader_allowed_by_its_hash(demo, path):
    response = Client().get(path)
    body = response.content.decode()
    scripts = re.findall(r"<script>(.*?)</script>", body, re.S)
    assert scripts == [inline.inline_script_text("js/after-paint.js")]
    sources = _sources(response["Content-Security-Policy"], "script-src")
    assert sources == ["'self'", _hash(scripts[0])]  # no 'unsafe-inline', nothing else inline


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_the_pages_scripts_and_manifest_wait_for_the_first_paint(demo, path):
    body = Client().get(path).content.decode()
    # Outside <template data-after-paint> no script file is linked and no manifest: none is fetched or
    # run before the first paint (static/js/after-paint.js starts them after it).
    waiting = re.findall(r"<template data-after-paint>(.*?)</template>", body, re.S)
    outside = re.sub(r"<template data-after-paint>.*?</template>", "", body, flags=re.S)
    assert "<script src=" not in outside and 'rel="manifest"' not in outside
    assert any('rel="manifest"' in w for w in waiting)
    assert all(
        re.fullmatch(r'(<script src="/static/js/[\w.-]+"></script>|<link rel="manifest" href="[^"]+">)+', w)
        for w in waiting
    )
    # And no frame is drawn before the main content is parsed (Chrome: rel=expect, unblocked once the
    # element starts, so it names the footer, which starts after main ends).
    assert '<link rel="expect" href="#site-footer" blocking="render">' in body
    assert body.index('id="site-footer"') > body.index("</main>")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_fast_lane_sends_the_same_script_hash(demo):
    await fetch("/brokers/kestrel-fx/")
    fast = await fetch("/brokers/kestrel-fx/")
    assert header_map(fast)[b"x-page-cache"] == b"hit"
    sources = _sources(header_map(fast)[b"content-security-policy"].decode(), "script-src")
    (script,) = re.findall(r"<script>(.*?)</script>", fast["body"].decode(), re.S)
    assert _hash(script) in sources


def test_only_the_listed_scripts_can_be_inlined():
    with pytest.raises(ValueError, match="INLINE_SCRIPTS"):
        inline.inline_script_text("js/compare.js")


def test_a_changed_inline_script_changes_every_page_key(monkeypatch):
    before = isr.page_key("/", "")
    real = inline._read.__wrapped__

    def edited(path: str) -> str:
        return real(path) + ("\nvoid 0;" if path == "js/after-paint.js" else "")

    monkeypatch.setattr(inline, "_read", functools.lru_cache(edited))
    inline.forget_cached()
    try:
        assert isr.page_key("/", "") != before  # a copy whose loader the new policy would block is never served
    finally:
        monkeypatch.undo()
        inline.forget_cached()
    assert isr.page_key("/", "") == before


def test_the_inlined_script_keeps_its_code_and_drops_whole_line_comments():
    text = inline.inline_script_text("js/after-paint.js")
    assert "//" not in text and "PerformanceObserver" in text
    assert text.startswith("(function () {") and text.endswith("})();")


def test_the_manifest_carries_the_same_icon_inline():
    import json
    from pathlib import Path

    from django.contrib.staticfiles import finders

    manifest = json.loads(Path(str(finders.find("site.webmanifest"))).read_text(encoding="utf-8"))
    # Its own copy of favicon.svg, so an installing browser fetches nothing for it: kept the same here.
    assert {"src": inline.data_uri("favicon.svg"), "sizes": "any", "type": "image/svg+xml"} in manifest["icons"]
