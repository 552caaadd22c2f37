"""Directory filters that tell brokers apart, suspended brokers behind a switch, and fee/swap validation."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from brokers.models import Broker, Instrument, SwapRate
from marketdata.models import FeedConfig

pytestmark = pytest.mark.django_db


def names(body: str) -> set[str]:
    return set(re.findall(r'<th scope="row"><a href="/brokers/[\w-]+/">([^<]+)</a>', body))


def test_tier_means_a_licence_from_a_regulator_at_least_that_strict(client, demo):
    tier3 = names(client.get("/brokers/?tier=3").content.decode())
    tier1 = names(client.get("/brokers/?tier=1").content.decode())
    assert "Kestrel FX" in tier3 and "Kestrel FX" in tier1  # FCA and ASIC: it answers "tier <= 3" too
    assert "Coral Reef Trading" in tier3 and "Coral Reef Trading" not in tier1
    assert "Has an active licence from a regulator of" in client.get("/brokers/").content.decode()


def test_the_instrument_filter_separates_brokers(client, demo):
    everyone = names(client.get("/brokers/").content.decode())
    gold = names(client.get("/brokers/?instrument=US500").content.decode())
    assert gold and gold < everyone
    assert "Meridian Prime" not in gold  # FX and gold only


def test_only_regulators_that_license_a_listed_broker_are_offered(client, demo):
    body = client.get("/brokers/").content.decode()
    assert 'value="vfsc"' not in body  # Vanguard's VFSC licence is suspended and Kiwi Edge's unverified
    assert 'value="fca"' in body


def test_suspended_brokers_are_hidden_behind_a_visible_switch_and_carry_a_warning(client, demo):
    body = client.get("/brokers/").content.decode()
    assert "Vanguard Pacific FX" not in names(body)
    assert "Include suspended brokers" in body and "Suspended brokers are hidden" in body
    shown = client.get("/brokers/?include_suspended=on").content.decode()
    assert "Vanguard Pacific FX" in names(shown)
    assert "status-suspended" in shown


def test_a_suspended_brokers_own_compare_link_works(client, demo):
    response = client.get("/compare/?brokers=vanguard-pacific-fx")
    assert response.status_code == 200
    both = client.get("/compare/?brokers=vanguard-pacific-fx,northwind-markets")
    assert both.status_code == 200
    assert "is suspended" in both.content.decode()


def test_protection_deposit_leverage_and_funding_filters_narrow_the_list(client, demo):
    body = client.get(
        "/brokers/?negative_balance_protection=on&segregated_funds=on&max_deposit=200&min_leverage=100"
        "&funding=bank-transfer"
    ).content.decode()
    # Table Bay: NBP, segregated, $50, 1:400, bank transfer. Kiwi Edge has no segregated funds.
    assert names(body) == {"Table Bay Markets"}


def test_one_bad_field_gets_a_400_with_its_message_beside_it_and_the_other_filters_still_apply(client, demo):
    response = client.get("/brokers/?tier=9&max_deposit=abc&platform=ctrader")
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_max_deposit-error"' in body and 'id="id_tier-error"' in body
    assert 'aria-invalid="true"' in body
    listed = names(body)
    assert listed and "Kestrel FX" in listed and "Northwind Markets" not in listed  # cTrader still filters
    assert 'value="ctrader" selected' in body


def test_an_inactivity_fee_needs_the_months_after_which_it_applies(demo):
    broker = Broker.objects.get(slug="northwind-markets")
    broker.inactivity_fee = Decimal("10")
    broker.inactivity_after_months = None
    with pytest.raises(ValidationError) as err:
        broker.full_clean()
    assert "inactivity_after_months" in err.value.message_dict


def test_a_swap_beyond_a_thousand_dollars_a_night_is_refused(demo):
    swap = SwapRate(
        broker=Broker.objects.get(slug="northwind-markets"),
        instrument=Instrument.objects.get(symbol="EURUSD"),
        long_usd=Decimal("-5000"),
        short_usd=Decimal("1"),
    )
    with pytest.raises(ValidationError) as err:
        swap.full_clean(validate_constraints=False)
    assert "long_usd" in err.value.message_dict


def test_a_feed_can_only_carry_one_of_its_own_brokers_accounts(demo):
    northwind = Broker.objects.get(slug="northwind-markets")
    other = Broker.objects.get(slug="kestrel-fx").account_types.first()
    config = FeedConfig(broker=northwind, account=other)
    with pytest.raises(ValidationError) as err:
        config.full_clean()
    assert "account" in err.value.message_dict
