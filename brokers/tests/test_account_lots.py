"""Lot step and minimum order per account: in the model, validated, editable in admin, on the profile, migrated."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from brokers.models import AccountType, Broker
from brokers.tests.test_models_admin import broker_form

pytestmark = pytest.mark.django_db


def account(**overrides) -> AccountType:
    broker = Broker.objects.get(slug="kestrel-fx")
    fields = {"broker": broker, "name": "Lots", "spread_type": "raw", "min_deposit": Decimal("0")}
    fields.update(overrides)
    return AccountType(**fields)


def test_a_new_account_trades_in_hundredths_of_a_lot_from_a_hundredth(demo):
    acc = account()
    acc.full_clean()
    assert (acc.lot_step, acc.min_lots) == (Decimal("0.01"), Decimal("0.01"))


@pytest.mark.parametrize(
    ("step", "minimum"),
    [("0.01", "0.01"), ("0.01", "0.1"), ("0.1", "0.5"), ("1", "1"), ("0.001", "0.003"), ("0.05", "0.15")],
)
def test_a_minimum_that_is_a_whole_number_of_steps_is_accepted(demo, step, minimum):
    account(lot_step=Decimal(step), min_lots=Decimal(minimum)).full_clean()


@pytest.mark.parametrize(
    ("step", "minimum", "field", "message"),
    [
        ("0", "0.01", "lot_step", "A lot step must be at least 0.001 lot."),
        ("-0.01", "0.01", "lot_step", "A lot step must be at least 0.001 lot."),
        ("0.01", "0", "min_lots", "A minimum order must be at least 0.001 lot."),
        ("0.1", "0.05", "min_lots", "The minimum order (0.05 lot) must be at least one lot step (0.1 lot)."),
        ("0.02", "0.05", "min_lots", "The minimum order (0.05 lot) must be a whole number of lot steps (0.02 lot)."),
        ("0.03", "0.1", "min_lots", "The minimum order (0.1 lot) must be a whole number of lot steps (0.03 lot)."),
        ("101", "101", "lot_step", "A lot step above 100 lots is not credible."),
        ("0.01", "101", "min_lots", "A minimum order above 100 lots is not credible."),
        ("0.0001", "0.01", "lot_step", "decimal places"),
    ],
)
def test_an_impossible_step_or_minimum_is_refused_with_a_message(demo, step, minimum, field, message):
    with pytest.raises(ValidationError) as error:
        account(lot_step=Decimal(step), min_lots=Decimal(minimum)).full_clean()
    assert field in error.value.message_dict
    assert any(message in m for m in error.value.message_dict[field]), error.value.message_dict


@pytest.mark.parametrize(("step", "minimum"), [("0", "0.01"), ("-1", "0.01"), ("0.1", "0.05")])
def test_the_database_refuses_a_step_that_is_not_positive_or_a_minimum_below_it(demo, step, minimum):
    acc = AccountType.objects.filter(broker__slug="kestrel-fx").first()
    assert acc is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        AccountType.objects.filter(pk=acc.pk).update(lot_step=Decimal(step), min_lots=Decimal(minimum))


def _inline(**fields: str) -> dict[str, str]:
    row = {
        "name": "Raw",
        "spread_type": "raw",
        "commission_per_lot": "7",
        "min_deposit": "100",
        "spread_markup_pips": "0",
        "lot_step": "0.01",
        "min_lots": "0.01",
    }
    row.update(fields)
    return {"account_types-TOTAL_FORMS": "1", **{f"account_types-0-{k}": v for k, v in row.items()}}


def test_admin_saves_an_accounts_lot_step_and_minimum(staff_client, demo):
    response = staff_client.post("/admin/brokers/broker/add/", broker_form(**_inline(lot_step="0.1", min_lots="0.5")))
    assert response.status_code == 302, response.content.decode()[:2000]
    acc = Broker.objects.get(slug="test-broker").account_types.get()
    assert (acc.lot_step, acc.min_lots) == (Decimal("0.1"), Decimal("0.5"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lot_step": "0"}, "A lot step must be at least 0.001 lot."),
        ({"lot_step": "0.1", "min_lots": "0.05"}, "must be at least one lot step"),
        ({"lot_step": "0.02", "min_lots": "0.05"}, "must be a whole number of lot steps"),
    ],
)
def test_admin_explains_an_impossible_lot_step_or_minimum(staff_client, demo, fields, message):
    response = staff_client.post("/admin/brokers/broker/add/", broker_form(**_inline(**fields)))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Broker.objects.filter(slug="test-broker").exists()


def test_the_account_admin_lists_and_edits_lot_steps(staff_client, demo):
    acc = AccountType.objects.get(broker__slug="kestrel-fx", name="Standard")
    listing = staff_client.get("/admin/brokers/accounttype/?q=kestrel").content.decode()
    assert "lot step" in listing.lower() and "minimum order" in listing.lower()
    data = {
        "broker": str(acc.broker_id),
        "name": acc.name,
        "spread_type": acc.spread_type,
        "commission_per_lot": str(acc.commission_per_lot),
        "min_deposit": str(acc.min_deposit),
        "spread_markup_pips": str(acc.spread_markup_pips),
        "lot_step": "0.02",
        "min_lots": "0.05",
    }
    refused = staff_client.post(f"/admin/brokers/accounttype/{acc.pk}/change/", data)
    assert refused.status_code == 200 and "must be a whole number of lot steps" in refused.content.decode()
    data["min_lots"] = "0.1"
    assert staff_client.post(f"/admin/brokers/accounttype/{acc.pk}/change/", data).status_code == 302
    acc.refresh_from_db()
    assert (acc.lot_step, acc.min_lots) == (Decimal("0.02"), Decimal("0.1"))


def test_the_profiles_account_table_shows_each_accounts_lot_step_and_minimum(client, demo):
    broker = Broker.objects.get(slug="alpenbank-trading")
    AccountType.objects.filter(broker=broker, name="Premium").update(lot_step=Decimal("0.1"), min_lots=Decimal("1"))
    body = client.get(f"/brokers/{broker.slug}/").content.decode()
    table = body.split('id="accounts-heading"')[1].split("</table>")[0]
    assert "Lot step" in table and "Minimum order" in table
    rows = {
        name: (step, minimum)
        for name, step, minimum in re.findall(
            r'<tr data-account="([^"]+)">.*?data-figure="lot-step">([^<]+)<.*?data-figure="min-lots">([^<]+)<',
            table,
            re.S,
        )
    }
    assert rows["Premium"] == ("0.1 lot", "1 lot")
    assert rows["Private"] == ("0.01 lot", "0.1 lot")  # as seeded


OLD = [("brokers", "0003_regulator_register_url_pattern")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_accounts_a_hundredth_of_a_lot_and_runs_backwards():
    from brokers.services import demo_seed

    demo_seed()
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(OLD)
    try:
        old = MigrationExecutor(connection).loader.project_state(OLD).apps
        OldAccount = old.get_model("brokers", "AccountType")
        assert "lot_step" not in {f.name for f in OldAccount._meta.get_fields()}
        broker = old.get_model("brokers", "Broker").objects.get(slug="kestrel-fx")
        OldAccount.objects.create(broker=broker, name="Before lots", spread_type="raw", min_deposit=0)
        count = OldAccount.objects.count()
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert AccountType.objects.count() == count
    assert set(AccountType.objects.values_list("lot_step", "min_lots")) == {(Decimal("0.01"), Decimal("0.01"))}
    MigrationExecutor(connection).migrate(OLD)
    try:
        old = MigrationExecutor(connection).loader.project_state(OLD).apps
        assert old.get_model("brokers", "AccountType").objects.filter(name="Before lots").exists()
    finally:
        MigrationExecutor(connection).migrate(latest)
