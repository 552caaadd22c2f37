"""TrustMetrics tasks (called directly and through a real Celery worker), admin action and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from brokers.models import Broker
from brokers.services import demo_seed
from testing.support import wait_for, without_script_loader
from trustmetrics import services, tasks
from trustmetrics.methodology import METHODOLOGY
from trustmetrics.models import TrustScore
from trustmetrics.synthetic_load import synthetic_market_write

START = datetime(2026, 11, 2, tzinfo=UTC)
AS_OF = START + timedelta(days=3)
SYMBOLS = ["EURUSD", "USDJPY", "XAUUSD"]


def market() -> None:
    demo_seed()
    synthetic_market_write(start=START, days=3, symbols=SYMBOLS)


def test_the_tasks_acknowledge_late_so_a_crash_redelivers_them():
    assert tasks.trust_recompute.acks_late is True
    assert tasks.trust_recompute_full.acks_late is True


@pytest.mark.django_db
def test_calling_the_task_twice_for_one_slot_stores_one_run():
    market()
    assert tasks.trust_recompute(AS_OF.isoformat()) == 14
    assert tasks.trust_recompute(AS_OF.isoformat()) == 0
    assert tasks.trust_recompute_full(AS_OF.isoformat()) == 0
    assert TrustScore.objects.filter(computed_at=AS_OF).count() == 14


@pytest.mark.django_db
def test_the_task_rejects_a_time_without_timezone():
    with pytest.raises(ValueError, match="timezone"):
        tasks.trust_recompute("2026-11-05T00:00:00")


def test_scheduled_runs_map_to_the_start_of_their_slot():
    slot = services.run_slot(datetime(2026, 11, 5, 10, 7, 31, tzinfo=UTC), timedelta(minutes=5))
    assert slot == datetime(2026, 11, 5, 10, 5, tzinfo=UTC)


def test_a_real_worker_runs_the_task_and_a_duplicate_message_adds_nothing(celery_worker):
    market()
    tasks.trust_recompute.delay(AS_OF.isoformat())
    tasks.trust_recompute.delay(AS_OF.isoformat())  # redelivered / double-enqueued
    later = AS_OF + timedelta(minutes=5)
    tasks.trust_recompute_full.delay(later.isoformat())
    # The solo worker takes messages in order: once the last run is stored, the duplicate is done too.
    wait_for(lambda: TrustScore.objects.filter(computed_at=later).count() == 14, timeout=30)
    assert TrustScore.objects.filter(computed_at=AS_OF).count() == 14
    assert TrustScore.objects.count() == 28


def test_the_admin_action_recomputes_through_the_worker(celery_worker, admin_client):
    market()
    services.trust_scores_compute(as_of=AS_OF)
    first = TrustScore.objects.first()
    assert first is not None
    response = admin_client.post(
        reverse("admin:trustmetrics_trustscore_changelist"),
        {"action": "recompute_now", "_selected_action": [first.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Recompute queued" in response.content.decode()
    wait_for(lambda: TrustScore.objects.count() == 28, timeout=30)


@pytest.mark.django_db
def test_a_run_revalidates_the_pages_of_changed_scores(client, django_capture_on_commit_callbacks):
    market()
    broker = Broker.objects.get(slug="coral-reef-trading")
    url = reverse("brokers:profile", kwargs={"slug": broker.slug})
    assert client.get(url)["X-Page-Cache"] == "miss"
    assert client.get(url)["X-Page-Cache"] == "hit"
    assert client.get(reverse("brokers:directory"))["X-Page-Cache"] == "miss"
    with django_capture_on_commit_callbacks(execute=True):
        run = services.trust_scores_compute(as_of=AS_OF)
    assert broker.pk in run.changed
    # Outdated: the first request after the change gets the page rendered anew (pagecache.isr).
    assert client.get(url)["X-Page-Cache"] == "revalidated"
    assert client.get(reverse("brokers:directory"))["X-Page-Cache"] == "revalidated"


@pytest.mark.django_db
def test_an_unchanged_rerun_leaves_cached_pages_alone(client, django_capture_on_commit_callbacks):
    market()
    services.trust_scores_compute(as_of=AS_OF)
    url = reverse("brokers:profile", kwargs={"slug": "northwind-markets"})
    client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=5))
    assert run.changed == []
    assert client.get(url)["X-Page-Cache"] == "hit"


@pytest.mark.django_db
def test_the_profile_shows_score_components_with_explanations_and_history_chart(client):
    market()
    for minutes in (0, 5, 10):
        services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=minutes))
    latest = TrustScore.objects.filter(broker__slug="kestrel-fx").latest()
    html = client.get(reverse("brokers:profile", kwargs={"slug": "kestrel-fx"})).content.decode()
    assert f"Overall <strong>{latest.overall:.1f}</strong>" in html
    for comp in METHODOLOGY.components:
        assert comp.title in html
        assert comp.summary.replace("'", "&#x27;") in html
    # Three runs on one day: the daily chart has one point, the day's last score.
    assert html.count('class="point" data-tip=') == 1
    assert "data-trust-chart" in html
    assert 'href="/methodology/"' in html


@pytest.mark.django_db
def test_an_unscored_broker_says_so(client):
    demo_seed()
    html = client.get(reverse("brokers:profile", kwargs={"slug": "kestrel-fx"})).content.decode()
    assert "Not scored yet" in html


@pytest.mark.django_db
def test_the_methodology_page_is_generated_from_the_methodology_object(client):
    response = client.get("/methodology/")
    assert response.status_code == 200
    assert response["X-Page-Cache"] == "miss"
    html = response.content.decode()
    assert f"version {METHODOLOGY.version}" in html
    for comp in METHODOLOGY.components:
        assert f'id="component-{comp.key}"' in html
        assert f"<td>{round(comp.weight * 100)}%</td>" in html
    for note in METHODOLOGY.history:
        assert escape(note.changes) in html
    assert f"{METHODOLOGY.off_market_factor:.0f} times the median" in html
    assert client.get("/methodology/")["X-Page-Cache"] == "hit"


@pytest.mark.django_db
def test_the_methodology_page_shows_each_validation_scenario_with_its_rank_correlation_and_time(client):
    from trustmetrics.selectors import trust_validation_stored
    from trustmetrics.services import trust_validation_store

    trust_validation_store()
    html = client.get("/methodology/").content.decode()
    summary = trust_validation_stored()
    assert summary is not None
    assert 'id="validation-heading"' in html and 'id="validation-pending"' not in html
    assert len(summary["scenarios"]) >= 4
    for r in summary["scenarios"]:
        assert f'<th scope="row">{escape(r["title"])}</th><td>{r["period"]}</td>' in html
        assert f"<td>{r['spearman']:.3f}</td>" in html
    assert f'datetime="{summary["as_of"].isoformat()}"' in html
    assert f"the median rank correlation is {summary['held_out_median']:.3f}" in html
    reassigned = f"{summary['reassigned_passing']} of {summary['reassigned_count']} reach 0.9"
    assert summary["reassigned_count"] == 50 and reassigned in html


@pytest.mark.django_db
def test_stored_validation_figures_are_read_not_computed_while_the_page_renders(client, monkeypatch):
    from trustmetrics import validation
    from trustmetrics.models import TrustValidation
    from trustmetrics.services import trust_validation_store

    first = trust_validation_store()
    assert trust_validation_store().computed_at == first.computed_at  # a version is computed once
    assert TrustValidation.objects.count() == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the page computed the validation figures")

    monkeypatch.setattr(validation, "scenario_run", refuse)
    monkeypatch.setattr(validation, "validation_summary", refuse)
    assert client.get("/methodology/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_without_stored_figures_the_page_answers_at_once_and_they_are_computed_in_the_background(client, settings):
    from django.core.cache import cache

    from trustmetrics.models import TrustValidation

    settings.PAGECACHE_BACKGROUND = "thread"  # the one-process fallback; with Redis a Celery task does the same
    cache.delete(f"trust-validation-lock:{METHODOLOGY.version}")
    html = client.get("/methodology/").content.decode()
    assert 'id="validation-pending"' in html
    wait_for(
        lambda: TrustValidation.objects.filter(methodology_version=METHODOLOGY.version).exists(),
        120,
        what="the background computation storing the figures",
    )
    row = TrustValidation.objects.get(methodology_version=METHODOLOGY.version)
    assert len(row.summary["scenarios"]) >= 4 and row.summary["held_out_count"] == 50
    # Storing them revalidated the page: it shows the figures now.
    wait_for(
        lambda: 'id="validation-pending"' not in client.get("/methodology/").content.decode(),
        60,
        what="the page showing the stored figures",
    )
    cache.delete(f"trust-validation-lock:{METHODOLOGY.version}")


@pytest.mark.django_db
def test_the_validate_command_stores_the_figures_and_prints_them():
    from io import StringIO

    from django.core.management import call_command

    from trustmetrics.models import TrustValidation

    out = StringIO()
    call_command("trust_validate", stdout=out)
    assert TrustValidation.objects.filter(methodology_version=METHODOLOGY.version).count() == 1
    assert "held-out" in out.getvalue() and "reversed" in out.getvalue()


@pytest.mark.django_db
def test_the_methodology_page_shows_labels_not_keys_and_only_tracked_instruments(client):
    demo_seed()
    html = client.get("/methodology/").content.decode()
    assert "Negative balance protection" in html
    assert "Companytype" not in html and "Negativebalanceprotection" not in html
    assert "US500 USD" in html and "GER40 EUR" in html
    assert "NAS100" not in html and "JP225" not in html  # known to the methodology, not tracked here
    assert 'id="critical"' in html


@pytest.mark.django_db
def test_the_computed_time_is_absolute_in_the_cached_page_and_made_relative_in_the_browser(client):
    market()
    services.trust_scores_compute(as_of=AS_OF)
    html = client.get(reverse("brokers:profile", kwargs={"slug": "kestrel-fx"})).content.decode()
    # The absolute time is what the cached page states; the relative words beside it are as of the
    # render (so the page does not shift when charts.js refreshes them: issue 14) and kept current by
    # the browser (brokers/tests/test_relative_time.py holds both to the same words).
    assert f'<time datetime="{AS_OF.isoformat()}" data-relative>{AS_OF:%-d %b %Y, %H:%M} UTC</time>' in html
    assert '<span class="relative-time muted"> (' in html
    assert "js/charts" in html and "<script>" not in without_script_loader(html)


@pytest.mark.django_db
def test_licences_link_to_the_register_show_the_check_date_and_flag_old_checks(client):
    from brokers.models import Licence

    demo_seed()
    lic = Licence.objects.filter(regulator__name="FCA").select_related("broker").first()
    assert lic is not None
    lic.last_verified = datetime.now(tz=UTC).date() - timedelta(days=120)
    lic.save()
    html = client.get(reverse("brokers:profile", kwargs={"slug": lic.broker.slug})).content.decode()
    assert lic.register_url().startswith("https://register.fca.org.uk/s/search?q=")
    assert f'href="{lic.register_url()}"' in html
    assert "over 90 days: counts less" in html


@pytest.mark.django_db
def test_scoring_counts_a_licence_checked_long_ago_as_unchecked():
    from brokers.models import Licence
    from trustmetrics import selectors

    demo_seed()
    lic = Licence.objects.select_related("broker").first()
    assert lic is not None
    now = datetime.now(tz=UTC)
    for days, checked in ((10, True), (120, False)):
        Licence.objects.filter(broker_id=lic.broker_id).update(last_verified=now.date() - timedelta(days=days))
        inputs = {b.broker_id: b for b in selectors.trust_broker_inputs(as_of=now, sums={}, feeds={})}
        assert {x.checked for x in inputs[lic.broker_id].licences} == {checked}
