"""Writes of the brokers app."""

from __future__ import annotations

import zlib
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.text import slugify

from brokers.models import (
    REGISTER_URL_PATTERNS,
    AccountType,
    Broker,
    BrokerInstrument,
    FundingMethod,
    Instrument,
    Licence,
    Platform,
    Regulator,
)
from simulator import world as demo_data


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
                name=name, asset_class=asset_class, pip_size=Decimal(pip), display_precision=precision, sort_order=order
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
            AccountType.objects.update_or_create(
                broker=broker,
                name=acc_name,
                defaults=dict(
                    spread_type=spread_type, commission_per_lot=Decimal(commission), min_deposit=Decimal(deposit)
                ),
            )
        for symbol in spec["instruments"]:  # type: ignore[attr-defined]
            BrokerInstrument.objects.update_or_create(
                broker=broker, instrument=instruments[symbol], defaults={"broker_symbol": f"{symbol}{spec['suffix']}"}
            )
    return {
        "regulators": Regulator.objects.count(),
        "instruments": Instrument.objects.count(),
        "brokers": Broker.objects.count(),
        "licences": Licence.objects.count(),
    }
