"""{% signed_in_only %}: in a cached page, markup only a signed-in visitor gets."""

from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client

from pagecache import isr

PROFILE = "/brokers/kestrel-fx/"
LIVE_SCRIPT = '<template data-after-paint><script src="/static/js/live.'


@pytest.mark.django_db
def test_the_profiles_live_quotes_script_goes_only_to_signed_in_visitors(demo, django_user_model):
    anonymous = Client().get(PROFILE).content.decode()
    assert anonymous.count(LIVE_SCRIPT) == 1
    assert isr.SIGNED_IN_START + LIVE_SCRIPT in anonymous  # commented out: not fetched, not run

    trader = Client()
    trader.force_login(django_user_model.objects.create_user("signed-in-trader"))
    response = trader.get(PROFILE)
    assert response["X-Page-Cache"] == "hit"  # personalised from the same shared copy
    body = response.content.decode()
    assert LIVE_SCRIPT in body and isr.SIGNED_IN_START not in body and isr.SIGNED_IN_END not in body


def test_the_block_is_open_when_a_signed_in_visitor_is_rendered_for_directly(rf, django_user_model):
    template = Template("{% load signed_in %}a{% signed_in_only %}<b>{{ x }}</b>{% end_signed_in_only %}z")
    request = rf.get("/")
    request.user = type("U", (), {"is_authenticated": True})()
    assert template.render(Context({"request": request, "x": "<i>"})) == "a<b>&lt;i&gt;</b>z"
    request.user = type("U", (), {"is_authenticated": False})()
    closed = template.render(Context({"request": request, "x": 1}))
    assert closed == f"a{isr.SIGNED_IN_START}<b>1</b>{isr.SIGNED_IN_END}z"
    assert isr.personalise(closed.encode(), request) == b"a<b>1</b>z"


def test_content_that_would_end_the_comment_early_is_refused(rf):
    template = Template("{% load signed_in %}{% signed_in_only %}{{ x|safe }}{% end_signed_in_only %}")
    with pytest.raises(TemplateSyntaxError):
        template.render(Context({"request": rf.get("/"), "x": "--><script>"}))
