"""The order a trader asks about: instrument, side, size and whether the size is in units or lots."""

from __future__ import annotations

import math
from typing import Any, Final

from django import forms

from brokers.models import Instrument
from execution import calc, selectors

UNIT_CHOICES = [("lots", "lots"), ("units", "units")]
# The page's form, its JSON and /api/v1/execution read a size without a unit the same way.
DEFAULT_UNIT: Final = "lots"
SIDE_CHOICES = [("buy", "Buy"), ("sell", "Sell")]


class OrderForm(forms.Form):
    instrument = forms.CharField(max_length=20, error_messages={"required": "Choose an instrument."})
    side = forms.CharField(
        max_length=8, widget=forms.RadioSelect(choices=SIDE_CHOICES), error_messages={"required": "Say buy or sell."}
    )
    size = forms.CharField(
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"required": "Enter a size."},
    )
    unit = forms.CharField(max_length=8, required=False, widget=forms.Select(choices=UNIT_CHOICES))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instrument"].widget = forms.Select(choices=selectors.instrument_choices())

    def clean_instrument(self) -> Instrument:
        symbol = self.cleaned_data["instrument"].strip().upper()
        found = selectors.instrument_get(symbol=symbol)
        if found is None:
            raise forms.ValidationError(f"Unknown instrument '{symbol[:20]}'.")
        return found

    def clean_side(self) -> str:
        side = str(self.cleaned_data["side"]).strip().lower()
        if side not in ("buy", "sell"):
            raise forms.ValidationError("Side must be 'buy' or 'sell'.")
        return side

    def clean_unit(self) -> str:
        unit = (self.cleaned_data.get("unit") or DEFAULT_UNIT).strip().lower()
        if unit not in ("units", "lots"):
            raise forms.ValidationError("Unit must be 'units' or 'lots'.")
        return unit

    def clean_size(self) -> float:
        text = self.cleaned_data["size"].strip().replace(",", "").replace("_", "").replace(" ", "")
        try:
            size = float(text)
        except ValueError:
            raise forms.ValidationError("Size must be a number, e.g. 1000000 units or 10 lots.") from None
        if not math.isfinite(size):
            raise forms.ValidationError("Size must be a finite number.")
        if size <= 0:
            raise forms.ValidationError("Size must be greater than zero.")
        return size

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        instrument, size, unit = data.get("instrument"), data.get("size"), data.get("unit")
        if isinstance(instrument, Instrument) and size is not None and unit is not None:
            lot = calc.contract_size(symbol=instrument.symbol, asset_class=instrument.asset_class)
            units = size * lot if unit == "lots" else size
            if units > calc.MAX_LOTS * lot:
                self.add_error(
                    "size",
                    f"{units:,.0f} units is more than {calc.MAX_LOTS:,.0f} lots "
                    f"({calc.MAX_LOTS * lot:,.0f} units of {instrument.symbol}); check the size.",
                )
            else:
                data["units"] = units
                data["lot"] = lot
        return data

    def error_text(self) -> str:
        """All errors in one line, for the JSON answer."""
        return " ".join(f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in self.errors.items())
