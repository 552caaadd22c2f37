"""One source for each figure: the profile, compare and directory pages and the JSON agree, for every broker."""

from __future__ import annotations

import html
import re
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from brokers.models import Broker, Instrument
from marketdata.models import SpreadBar
from trustmetrics.models import TrustScore

pytestmark = pytest.mark.django_db


def _hour_bars(days: float) -> None:
    """EURUSD hourly bars for every broker over the last ``days``, each broker its own spread."""
    eurusd = Instrument.objects.get(symbol="EURUSD")
    now = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    bars = []
    for n, broker in enumerate(Broker.objects.order_by("pk")):
        for h in range(int(days * 24)):
            mean = 0.00005 + n * 0.000013 + (h % 5) * 0.000003  # varies by hour: weighting matters
            bars.append(
                SpreadBar(
                    broker=broker,
                    instrument=eurusd,
                    resolution="1h",
                    start=now - timedelta(hours=h + 1),
                    open=mean,
                    high=mean,
                    low=mean,
                    close=mean,
                    mean=mean,
                    count=10 + h % 7,  # quote weighting would give another mean than time weighting
                    dev_min=0,
                    dev_max=0,
                    duration=3600.0 - (h % 3) * 600,
                )
            )
    SpreadBar.objects.bulk_create(bars)


def _scores() -> None:
    now = timezone.now()
    for n, broker in enumerate(Broker.objects.order_by("pk")):
        TrustScore.objects.create(
            broker=broker,
            computed_at=now,
            methodology_version="t",
            overall=40.0 + n * 3.3,
            label="x",
            confidence=1,
            components={},
        )


def _money(text: str) -> str:
    return text.strip().replace("$", "").replace(",", "")


def _directory_costs(body: str) -> dict[str, str]:
    pattern = r'data-figure="all-in-eurusd" data-broker="([\w-]+)">(?:<strong>([^<]+)</strong>|–)'
    return {slug: _money(value) for slug, value in re.findall(pattern, body) if value}


def _profile_cheapest_cost(body: str) -> str:
    values = [float(_money(v)) for v in re.findall(r'data-figure="all-in-eurusd" data-account="[^"]*">([^<]+)<', body)]
    return f"{min(values):.2f}"


def _profile_spread(body: str) -> str:
    found = re.search(r'data-figure="spread-7d" data-symbol="EURUSD">([\d.]+)', body)
    assert found is not None
    return found.group(1)


def _compare_row(body: str, fmt: str) -> list[str]:
    return [_money(v) for v in re.findall(rf'<span data-figure="{fmt}">([^<]+)</span>', body)]


def test_profile_compare_directory_and_json_show_the_same_spread_cost_score_and_licences_for_every_broker(client, demo):
    _hour_bars(days=3)
    _scores()
    brokers = list(Broker.objects.order_by("name"))
    directory = client.get("/brokers/?include_suspended=on").content.decode()
    in_directory = _directory_costs(directory)
    assert set(in_directory) == {b.slug for b in brokers}, "every broker, the suspended one included, is listed"

    seen = {}
    for broker in brokers:
        profile = client.get(f"/brokers/{broker.slug}/").content.decode()
        data = client.get(f"/brokers/{broker.slug}/figures.json").json()
        cheapest = min(c["all_in_usd"] for c in data["costs"] if c["instrument"] == "EURUSD")
        seen[broker.slug] = {
            "cost": _profile_cheapest_cost(profile),
            "spread": _profile_spread(profile),
            "json_cost": f"{cheapest:.2f}",
            "json_spread": f"{data['spreads']['EURUSD']['7d']['pips']:.2f}",
            # Shown as the templates' floatformat rounds (half up).
            "score": str(Decimal(str(data["trust_score"])).quantize(Decimal("1"), rounding=ROUND_HALF_UP)),
        }
        assert seen[broker.slug]["cost"] == seen[broker.slug]["json_cost"] == in_directory[broker.slug]
        assert seen[broker.slug]["spread"] == seen[broker.slug]["json_spread"]
        # The 7-day window over 3 days of data says so.
        assert data["spreads"]["EURUSD"]["7d"]["coverage"] == "3.0 of 7 days"
        assert "3.0 of 7 days" in profile
        assert f'<span class="score-value">{seen[broker.slug]["score"]}</span>' in profile
        assert f'title="TrustMetrics score {seen[broker.slug]["score"]} of 100"' in directory
        for lic in data["licences"]:
            assert lic["regulator"] in profile

    for i in range(0, len(brokers), 4):
        group = brokers[i : i + 4]
        if len(group) < 2:
            group = brokers[-2:]
        body = client.get("/compare/?brokers=" + ",".join(b.slug for b in group)).content.decode()
        assert _compare_row(body, "pips") == [seen[b.slug]["spread"] for b in group]
        assert _compare_row(body, "usd") == [seen[b.slug]["cost"] for b in group]


def test_a_window_longer_than_the_data_states_its_real_coverage_and_a_full_one_states_none(client, demo):
    _hour_bars(days=2.5)
    data = client.get("/brokers/northwind-markets/figures.json").json()
    assert data["spreads"]["EURUSD"]["24h"]["coverage"] is None
    assert data["spreads"]["EURUSD"]["7d"]["coverage"] == "2.5 of 7 days"


def test_the_cost_on_each_account_is_the_spread_in_dollars_plus_the_round_turn_commission(client, demo):
    _hour_bars(days=1)
    data = client.get("/brokers/northwind-markets/figures.json").json()
    rows = {c["account"]: c for c in data["costs"] if c["instrument"] == "EURUSD"}
    standard, raw = rows["Standard"], rows["Raw"]
    assert data["feed_account"] == "Raw"  # the tightest price is what the feed carries
    assert raw["commission_usd"] == 6.0 and standard["commission_usd"] == 0.0
    # The standard account adds its published 0.8-pip mark-up: $8 on a 100,000-unit lot.
    assert standard["spread_pips"] == pytest.approx(raw["spread_pips"] + 0.8, abs=0.011)
    assert standard["spread_cost_usd"] == pytest.approx(standard["spread_pips"] * 10, abs=0.06)  # pips shown to 0.01
    assert raw["all_in_usd"] == pytest.approx(raw["spread_cost_usd"] + 6.0, abs=0.011)
    assert raw["conversion"] == "quoted in USD"
    usdjpy = next(c for c in data["costs"] if c["instrument"] == "USDJPY")
    assert usdjpy["conversion"].startswith("1 JPY = ")


def test_the_profile_answers_what_one_lot_costs_on_each_account_with_an_overnight_hold(client, demo):
    _hour_bars(days=1)
    body = client.get("/brokers/alpenbank-trading/").content.decode()
    assert "One lot of EURUSD opened and closed costs" in body
    assert "on the Private account" in body and "on the Premium account" in body
    assert "held one night long" in body
    assert "Commission per lot, round turn (open + close)" in body
    assert "Withdrawal fee" in body


def test_the_directory_sorted_by_cost_lists_the_cheapest_all_in_first(client, demo):
    _hour_bars(days=1)
    body = client.get("/brokers/?sort=cost").content.decode()
    shown = [float(v) for v in _directory_costs(body).values()]  # in the page's order
    assert len(shown) >= 10 and shown == sorted(shown)


def test_a_cheapest_account_that_needs_more_than_the_brokers_lowest_deposit_says_so_where_it_is_marked(client, demo):
    # Alpenbank's Premium account ($3 commission) is its cheapest, but opens only from $50,000; its Private
    # account from $5,000. The directory and compare say so beside the figure, not only on the profile.
    _hour_bars(days=1)
    directory = client.get("/brokers/").content.decode()
    cell = re.search(r'data-broker="alpenbank-trading">(.*?)</td>', directory, re.S)
    assert cell is not None and "Premium" in cell.group(1) and "opens from $50,000" in cell.group(1)
    # Every broker: the note is there exactly when its cheapest account needs more than its lowest deposit.
    for broker in Broker.objects.filter(status=Broker.Status.ACTIVE).prefetch_related("account_types"):
        found = re.search(rf'data-broker="{broker.slug}">(.*?)</td>', directory, re.S)
        assert found is not None
        account = re.search(r'<span class="muted">([^<]+)</span>', found.group(1))
        assert account is not None
        deposit = next(a.min_deposit for a in broker.account_types.all() if a.name == account.group(1))
        assert ("opens from" in found.group(1)) == (deposit > broker.min_deposit), broker.slug
    compare = client.get("/compare/?brokers=alpenbank-trading,northwind-markets").content.decode()
    assert "Premium account: spread $" in compare and "(opens from a $50,000 deposit)" in compare
    # ... and every account's all-in, with a night held long, is on compare too: not only the cheapest one.
    for slug in ("alpenbank-trading", "northwind-markets"):
        for c in client.get(f"/brokers/{slug}/figures.json").json()["costs"]:
            if c["instrument"] == "EURUSD":
                assert f"{c['account']} ${c['all_in_usd']:,.2f} (" in compare, (slug, c["account"])


def test_alpenbank_is_not_the_cheapest_at_three_dollars_for_a_retail_client_when_its_private_account_charges_five(
    demo,
):
    from marketdata import costs
    from marketdata.selectors import feed_accounts

    broker = Broker.objects.prefetch_related("account_types").get(slug="alpenbank-trading")
    feed = feed_accounts(brokers=[broker])[broker.pk]
    chosen = costs.scoring_account(broker.account_types.all(), feed=feed)
    assert chosen is not None and chosen.name == "Private"  # Premium needs $50,000
    assert costs.scoring_commission_equivalent(chosen, feed=feed) == 5.0


def _account_bars(days: float) -> dict[int, set[str]]:
    """EURUSD hourly bars of each broker's other accounts on feeds of their own (measured, not derived): each a
    spread of its own, so a page reading the wrong account's bars shows another figure. Returns broker id ->
    the accounts measured so."""
    from brokers.models import AccountType
    from marketdata import costs

    eurusd = Instrument.objects.get(symbol="EURUSD")
    now = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    measured: dict[int, set[str]] = {}
    bars = []
    for broker in Broker.objects.order_by("pk").prefetch_related("account_types"):
        accounts = list(broker.account_types.all())
        default = costs.feed_account_default(accounts)
        for k, account in enumerate(a for a in accounts if a != default):
            measured.setdefault(broker.pk, set()).add(account.name)
            for h in range(int(days * 24)):
                mean = 0.00009 + (broker.pk % 5) * 0.00002 + k * 0.00004 + (h % 4) * 0.000005
                bars.append(
                    SpreadBar(broker=broker, instrument=eurusd, account=account, resolution="1h",
                              start=now - timedelta(hours=h + 1), open=mean, high=mean, low=mean, close=mean,
                              mean=mean, count=5 + h % 3, dev_min=0, dev_max=0, duration=3600.0 - (h % 2) * 900)
                )  # fmt: skip
    assert AccountType.objects.exists()
    SpreadBar.objects.bulk_create(bars)
    return measured


def _profile_account_costs(body: str) -> dict[str, str]:
    found = re.findall(r'data-figure="all-in-eurusd" data-account="([^"]*)">([^<]+)<', body)
    return {account: f"{float(_money(v)):.2f}" for account, v in found}


def test_every_account_shows_one_all_in_cost_on_every_page_whether_measured_on_its_own_feed_or_derived(client, demo):
    _hour_bars(days=3)
    measured = _account_bars(days=3)
    assert sum(len(v) for v in measured.values()) >= 8  # most brokers price a second account apart
    brokers = list(Broker.objects.order_by("name"))
    in_directory = _directory_costs(client.get("/brokers/?include_suspended=on").content.decode())
    cheapest_account = {}
    for broker in brokers:
        profile = client.get(f"/brokers/{broker.slug}/").content.decode()
        data = client.get(f"/brokers/{broker.slug}/figures.json").json()
        rows = {c["account"]: c for c in data["costs"] if c["instrument"] == "EURUSD"}
        on_profile = _profile_account_costs(profile)
        # Per account: the profile's figure is the JSON's, and the JSON says how the spread was found.
        assert on_profile == {name: f"{c['all_in_usd']:.2f}" for name, c in rows.items()}
        for name, c in rows.items():
            assert c["spread_measured"] == (name in measured.get(broker.pk, set()) or name == data["feed_account"])
            assert html.escape(c["spread_basis"]) in profile
        cheapest = min(rows.values(), key=lambda c: c["all_in_usd"])
        cheapest_account[broker.slug] = (cheapest["account"], f"{cheapest['all_in_usd']:.2f}")
        assert in_directory[broker.slug] == cheapest_account[broker.slug][1]
    for i in range(0, len(brokers), 4):
        group = brokers[i : i + 4] if len(brokers[i : i + 4]) >= 2 else brokers[-2:]
        body = client.get("/compare/?brokers=" + ",".join(b.slug for b in group)).content.decode()
        assert _compare_row(body, "usd") == [cheapest_account[b.slug][1] for b in group]
        for b in group:
            assert f"{cheapest_account[b.slug][0]} account: spread $" in body
