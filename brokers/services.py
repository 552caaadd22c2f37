"""Writes of the brokers app."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.text import slugify

from brokers.models import (
    DEFAULT_LOT_STEP,
    DEFAULT_MIN_LOTS,
    REGISTER_URL_PATTERNS,
    AccountType,
    Broker,
    BrokerInstrument,
    ConversionRate,
    FundingMethod,
    Instrument,
    Licence,
    Platform,
    Regulator,
    SwapRate,
)
from simulator import world as demo_data
from simulator.instruments import SPECS

# The demo's conversion rates are the simulator's reference prices, fixed at one date so reseeding changes nothing.
DEMO_RATES_AS_OF = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


# Accounts of the demo that trade in other sizes than the usual 0.01 lot from 0.01 lot (lot step, minimum order):
# a private bank's large account, and a broker that deals in 10,000-unit lots.
DEMO_LOT_RULES = {
    ("Alpenbank Trading", "Premium"): (Decimal("0.1"), Decimal("1")),
    ("Alpenbank Trading", "Private"): (Decimal("0.01"), Decimal("0.1")),
    ("Sakura Securities FX", "Standard"): (Decimal("0.1"), Decimal("0.1")),
}


@transaction.atomic
def demo_seed() -> dict[str, int]:
    """Create or update the demo data. Running it again changes nothing."""
    regulators = {}
    for name, full_name, country, tier, website in demo_data.REGULATORS:
        regulators[name], _ = Regulator.objects.update_or_create(
            slug=slugify(name),
            defaults=dict(name=name, full_name=full_name, country=country, tier=tier, website=website),
        )
        if not regulators[name].register_url_pattern and name in REGISTER_URL_PATTERNS:
            regulators[name].register_url_pattern = REGISTER_URL_PATTERNS[name]
            regulators[name].save(update_fields=["register_url_pattern"])
    instruments = {}
    for order, (symbol, name, asset_class, pip, precision) in enumerate(demo_data.INSTRUMENTS):
        instruments[symbol], _ = Instrument.objects.update_or_create(
            symbol=symbol,
            defaults=dict(
                name=name,
                asset_class=asset_class,
                pip_size=Decimal(pip),
                display_precision=precision,
                sort_order=order,
                # The simulator's spread before any broker's mark-up: the market the demo brokers quote.
                reference_spread_pips=(
                    Decimal(str(SPECS[symbol].spread_pips))
                    if symbol in SPECS and SPECS[symbol].spread_pips > 0
                    else None
                ),
            ),
        )
    platforms = {
        n: Platform.objects.get_or_create(slug=slugify(n), defaults={"name": n})[0] for n in demo_data.PLATFORMS
    }
    funding = {
        n: FundingMethod.objects.get_or_create(slug=slugify(n), defaults={"name": n})[0] for n in demo_data.FUNDING
    }

    for spec in demo_data.BROKERS:
        name = str(spec["name"])
        slug = slugify(name)
        fees = demo_data.NON_TRADING_FEES.get(name, (0, 0, 0, None))
        broker, _ = Broker.objects.update_or_create(
            slug=slug,
            defaults=dict(
                name=name,
                website=f"https://{slug}.example",
                year_founded=spec["year"],
                headquarters_country=spec["hq"],
                company_type=spec["company_type"],
                description=f"{spec['description']} (Fictional broker for demonstration.)",
                min_deposit=Decimal(str(spec["deposit"])),
                max_leverage=spec["leverage"],
                negative_balance_protection=spec["nbp"],
                deposit_fee=Decimal(str(fees[0])),
                withdrawal_fee=Decimal(str(fees[1])),
                inactivity_fee=Decimal(str(fees[2])),
                inactivity_after_months=fees[3],
                segregated_funds=spec["seg"],
                status=Broker.Status.SUSPENDED if name == "Vanguard Pacific FX" else Broker.Status.ACTIVE,
            ),
        )
        broker.platforms.set([platforms[p] for p in spec["platforms"]])  # type: ignore[attr-defined]
        broker.funding_methods.set([funding[f] for f in spec["funding"]])  # type: ignore[attr-defined]
        for reg, number, status in spec["licences"]:  # type: ignore[attr-defined]
            Licence.objects.update_or_create(
                broker=broker,
                regulator=regulators[reg],
                defaults=dict(licence_number=number, status=status),
                # Demo only: a check date spread over the last 120 days, so some show as overdue (> 90 days).
                create_defaults=dict(
                    licence_number=number,
                    status=status,
                    last_verified=date.today() - timedelta(days=zlib.crc32(number.encode()) % 120),
                ),
            )
        for acc_name, spread_type, commission, deposit in spec["accounts"]:  # type: ignore[attr-defined]
            lots = DEMO_LOT_RULES.get((name, acc_name), (DEFAULT_LOT_STEP, DEFAULT_MIN_LOTS))
            AccountType.objects.update_or_create(
                broker=broker,
                name=acc_name,
                defaults=dict(
                    spread_type=spread_type,
                    commission_per_lot=Decimal(commission),
                    min_deposit=Decimal(deposit),
                    spread_markup_pips=Decimal(str(demo_data.account_markup(name, acc_name))),
                    lot_step=lots[0],
                    min_lots=lots[1],
                ),
            )
        for symbol in spec["instruments"]:  # type: ignore[attr-defined]
            BrokerInstrument.objects.update_or_create(
                broker=broker, instrument=instruments[symbol], defaults={"broker_symbol": f"{symbol}{spec['suffix']}"}
            )
            base_long, base_short = demo_data.SWAP_BASE[symbol]
            markup = demo_data.SWAP_MARKUP.get(name, 1.0)
            SwapRate.objects.update_or_create(
                broker=broker,
                instrument=instruments[symbol],
                defaults=dict(
                    long_usd=Decimal(f"{base_long - markup:.2f}"), short_usd=Decimal(f"{base_short - markup:.2f}")
                ),
            )
    for currency, rate in demo_data.USD_RATES.items():
        ConversionRate.objects.update_or_create(
            currency=currency, defaults=dict(usd_per_unit=Decimal(f"{rate:.10f}"), as_of=DEMO_RATES_AS_OF)
        )
    return {
        "regulators": Regulator.objects.count(),
        "instruments": Instrument.objects.count(),
        "brokers": Broker.objects.count(),
        "licences": Licence.objects.count(),
    }
