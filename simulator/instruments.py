"""Simulation parameters per canonical instrument (matches brokers/demo_data.INSTRUMENTS)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstrumentSpec:
    symbol: str
    price: float  # starting mid
    pip: float
    digits: int  # decimals quoted
    spread_pips: float  # typical interbank-ish spread before a broker's mark-up
    annual_vol: float  # annualised volatility of the reference mid
    currencies: tuple[str, ...]  # calendar currencies that move it
    size: float  # typical top-of-book size


SPECS: dict[str, InstrumentSpec] = {
    s.symbol: s
    for s in [
        InstrumentSpec("EURUSD", 1.0850, 0.0001, 5, 0.6, 0.07, ("EUR", "USD"), 1_000_000),
        InstrumentSpec("GBPUSD", 1.2700, 0.0001, 5, 0.9, 0.08, ("GBP", "USD"), 1_000_000),
        InstrumentSpec("USDJPY", 151.20, 0.01, 3, 0.7, 0.09, ("USD", "JPY"), 1_000_000),
        InstrumentSpec("USDCHF", 0.8850, 0.0001, 5, 1.0, 0.07, ("USD", "CHF"), 1_000_000),
        InstrumentSpec("AUDUSD", 0.6550, 0.0001, 5, 0.8, 0.10, ("AUD", "USD"), 1_000_000),
        InstrumentSpec("USDCAD", 1.3600, 0.0001, 5, 1.0, 0.06, ("USD", "CAD"), 1_000_000),
        InstrumentSpec("NZDUSD", 0.6050, 0.0001, 5, 1.2, 0.10, ("NZD", "USD"), 1_000_000),
        InstrumentSpec("EURGBP", 0.8550, 0.0001, 5, 1.0, 0.05, ("EUR", "GBP"), 1_000_000),
        InstrumentSpec("EURJPY", 164.00, 0.01, 3, 1.2, 0.09, ("EUR", "JPY"), 1_000_000),
        InstrumentSpec("GBPJPY", 192.00, 0.01, 3, 1.8, 0.10, ("GBP", "JPY"), 1_000_000),
        InstrumentSpec("AUDJPY", 99.00, 0.01, 3, 1.5, 0.11, ("AUD", "JPY"), 1_000_000),
        InstrumentSpec("EURCHF", 0.9600, 0.0001, 5, 1.5, 0.05, ("EUR", "CHF"), 1_000_000),
        InstrumentSpec("USDTRY", 32.50, 0.0001, 5, 40.0, 0.15, ("USD", "TRY"), 200_000),
        InstrumentSpec("USDZAR", 18.60, 0.0001, 5, 60.0, 0.15, ("USD", "ZAR"), 200_000),
        InstrumentSpec("USDMXN", 17.10, 0.0001, 5, 25.0, 0.12, ("USD", "MXN"), 200_000),
        InstrumentSpec("XAUUSD", 2350.0, 0.01, 2, 15.0, 0.15, ("USD", "XAU"), 100),
        InstrumentSpec("XAGUSD", 28.50, 0.001, 3, 15.0, 0.25, ("USD", "XAG"), 5_000),
        InstrumentSpec("US500", 5200.0, 0.1, 1, 4.0, 0.16, ("USD",), 50),
        InstrumentSpec("GER40", 18300.0, 0.1, 1, 8.0, 0.17, ("EUR",), 25),
        InstrumentSpec("BTCUSD", 65000.0, 1.0, 1, 15.0, 0.55, ("USD", "BTC"), 5),
    ]
}
