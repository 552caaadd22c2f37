"""Domain validation, the demo seed, and daily admin work through the test client as staff."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from brokers.models import AccountType, Broker, Licence, Regulator

pytestmark = pytest.mark.django_db


def broker_form(**overrides):
    data = {
        "name": "Test Broker",
        "slug": "test-broker",
        "status": "active",
        "website": "https://test.example",
        "description": "",
        "company_type": "private",
        "year_founded": "2010",
        "headquarters_country": "Malta",
        "min_deposit": "100",
        "max_leverage": "30",
        "deposit_fee": "0",
        "withdrawal_fee": "0",
        "inactivity_fee": "0",
        "licences-TOTAL_FORMS": "0",
        "licences-INITIAL_FORMS": "0",
        "account_types-TOTAL_FORMS": "0",
        "account_types-INITIAL_FORMS": "0",
        "broker_instruments-TOTAL_FORMS": "0",
        "broker_instruments-INITIAL_FORMS": "0",
        "swap_rates-TOTAL_FORMS": "0",
        "swap_rates-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    first = (Broker.objects.count(), Regulator.objects.count(), Licence.objects.count(), AccountType.objects.count())
    call_command("seed_demo")
    second = (Broker.objects.count(), Regulator.objects.count(), Licence.objects.count(), AccountType.objects.count())
    assert first == second
    assert first[0] == 14 and first[1] >= 10
    assert "Demo data ready: 15 regulators, 20 instruments, 14 brokers" in capsys.readouterr().out


def test_seeded_brokers_are_clearly_fictional(demo):
    for broker in Broker.objects.all():
        assert broker.website.endswith(".example")
        assert "Fictional" in broker.description


def test_it_rejects_a_negative_minimum_deposit(demo):
    broker = Broker.objects.get(slug="kestrel-fx")
    broker.min_deposit = Decimal("-1")
    with pytest.raises(ValidationError) as error:
        broker.full_clean()
    assert "cannot be negative" in str(error.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        Broker.objects.filter(pk=broker.pk).update(min_deposit=-1)


def test_it_rejects_a_regulator_tier_outside_one_to_three(demo):
    regulator = Regulator(name="XYZ", full_name="X", slug="xyz", country="Nowhere", tier=4)
    with pytest.raises(ValidationError) as error:
        regulator.full_clean()
    assert "Tier must be 1, 2 or 3" in str(error.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        Regulator.objects.create(name="XYZ", full_name="X", slug="xyz", country="Nowhere", tier=0)


def test_it_rejects_a_licence_without_a_number(demo):
    licence = Licence(
        broker=Broker.objects.get(slug="kestrel-fx"), regulator=Regulator.objects.get(slug="bafin"), licence_number=""
    )
    with pytest.raises(ValidationError) as error:
        licence.full_clean()
    assert "needs the regulator's licence number" in str(error.value)


def test_admin_lists_searches_and_filters_brokers(staff_client, demo):
    response = staff_client.get("/admin/brokers/broker/?q=kestrel")
    assert response.status_code == 200
    assert "Kestrel FX" in response.content.decode() and "Northwind Markets" not in response.content.decode()
    response = staff_client.get("/admin/brokers/broker/?licences__regulator__tier=3")
    assert "Coral Reef Trading" in response.content.decode()
    assert staff_client.get("/admin/brokers/broker/?q=FRN+401234").content.decode().count("Northwind Markets") >= 1


def test_admin_adds_a_broker_with_licence_and_account_inlines(staff_client, demo):
    fca = Regulator.objects.get(slug="fca")
    data = broker_form(
        **{
            "licences-TOTAL_FORMS": "1",
            "licences-0-regulator": str(fca.pk),
            "licences-0-licence_number": "FRN 1",
            "licences-0-status": "active",
            "account_types-TOTAL_FORMS": "1",
            "account_types-0-name": "Raw",
            "account_types-0-spread_type": "raw",
            "account_types-0-commission_per_lot": "7",
            "account_types-0-min_deposit": "100",
            "account_types-0-spread_markup_pips": "0",
            "account_types-0-lot_step": "0.01",
            "account_types-0-min_lots": "0.01",
        }
    )
    response = staff_client.post("/admin/brokers/broker/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    broker = Broker.objects.get(slug="test-broker")
    assert broker.licences.get().licence_number == "FRN 1"
    assert broker.account_types.get().commission_per_lot == Decimal("7")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_deposit": "-5"}, "a deposit or fee cannot be negative"),
        ({"slug": "kestrel-fx"}, "Another broker already uses this slug."),
        (
            {
                "licences-TOTAL_FORMS": "1",
                "licences-0-regulator": "__fca__",
                "licences-0-licence_number": "",
                "licences-0-status": "active",
            },
            "A licence needs the regulator&#x27;s licence number.",
        ),
        (
            {
                "account_types-TOTAL_FORMS": "1",
                "account_types-0-name": "X",
                "account_types-0-spread_type": "raw",
                "account_types-0-commission_per_lot": "-1",
                "account_types-0-min_deposit": "0",
            },
            "a deposit or fee cannot be negative",
        ),
    ],
)
def test_admin_explains_invalid_broker_forms(staff_client, demo, overrides, message):
    fca = Regulator.objects.get(slug="fca")
    overrides = {k: (str(fca.pk) if v == "__fca__" else v) for k, v in overrides.items()}
    response = staff_client.post("/admin/brokers/broker/add/", broker_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Broker.objects.filter(name="Test Broker").exists()


def test_admin_rejects_a_tier_outside_one_to_three(staff_client, demo):
    response = staff_client.post(
        "/admin/brokers/regulator/add/",
        {
            "name": "ABC",
            "full_name": "A B C",
            "slug": "abc",
            "country": "X",
            "tier": "5",
            "website": "",
        },
    )
    assert response.status_code == 200
    assert "Tier must be 1, 2 or 3" in response.content.decode()


def test_admin_edits_a_broker(staff_client, demo):
    broker = Broker.objects.get(slug="kestrel-fx")
    page = staff_client.get(f"/admin/brokers/broker/{broker.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(
        broker_form(
            name="Kestrel FX",
            slug="kestrel-fx",
            min_deposit="150",
            year_founded="2011",
            headquarters_country="Australia",
            website=broker.website,
            description=broker.description,
        )
    )
    data["platforms"] = [p.pk for p in broker.platforms.all()]
    for prefix, formset_count in (
        ("licences", broker.licences.count()),
        ("account_types", broker.account_types.count()),
        ("broker_instruments", broker.broker_instruments.count()),
    ):
        data[f"{prefix}-TOTAL_FORMS"] = "0"
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        assert formset_count > 0
    data["swap_rates-TOTAL_FORMS"] = data["swap_rates-INITIAL_FORMS"] = "0"
    response = staff_client.post(f"/admin/brokers/broker/{broker.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    broker.refresh_from_db()
    assert broker.min_deposit == Decimal("150")


def test_the_demo_gives_every_instrument_the_simulated_markets_spread_as_its_reference(demo):
    from brokers.models import Instrument
    from simulator.instruments import SPECS

    for instrument in Instrument.objects.all():
        assert instrument.reference_spread_pips == Decimal(str(SPECS[instrument.symbol].spread_pips))


@pytest.mark.parametrize("value", ["0", "-0.5"])
def test_admin_refuses_a_reference_spread_that_is_not_positive(staff_client, demo, value):
    from brokers.models import Instrument

    eur = Instrument.objects.get(symbol="EURUSD")
    data = {
        "symbol": eur.symbol,
        "name": eur.name,
        "asset_class": eur.asset_class,
        "pip_size": str(eur.pip_size),
        "display_precision": str(eur.display_precision),
        "sort_order": str(eur.sort_order),
        "reference_spread_pips": value,
    }
    response = staff_client.post(f"/admin/brokers/instrument/{eur.pk}/change/", data)
    assert response.status_code == 200
    assert "A reference spread must be positive." in response.content.decode()
    data["reference_spread_pips"] = ""  # empty: against the market's median
    assert staff_client.post(f"/admin/brokers/instrument/{eur.pk}/change/", data).status_code == 302
    eur.refresh_from_db()
    assert eur.reference_spread_pips is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Instrument.objects.filter(pk=eur.pk).update(reference_spread_pips=Decimal(value))
