"""Validation of public query strings. Unknown values get a 400 with a message, never a 500."""

from __future__ import annotations

from typing import Any

from django import forms

from brokers.models import AccountType
from brokers.selectors import SORTS, DirectoryFilters, FilterChoices

MAX_COMPARE = 4


class DirectoryFilterForm(forms.Form):
    """Every field optional; an invalid field is reported beside itself and the others still apply."""

    regulator = forms.ChoiceField(required=False, label="Active licence from")
    tier = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Has an active licence from a regulator of",
        choices=[("", "Any tier"), ("1", "Tier 1 (strictest)"), ("2", "Tier 1 or 2"), ("3", "Tier 1, 2 or 3")],
    )
    platform = forms.ChoiceField(required=False)
    instrument = forms.ChoiceField(required=False, label="Quotes instrument")
    spread_type = forms.ChoiceField(
        required=False, label="Account type", choices=[("", "Any account"), *AccountType.SpreadType.choices]
    )
    min_leverage = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Maximum leverage at least",
        choices=[("", "Any leverage"), *((str(x), f"1:{x}") for x in (30, 50, 100, 200, 500))],
    )
    max_deposit = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=1_000_000,
        decimal_places=2,
        label="Minimum deposit at most (USD)",
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    max_cost = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=10_000,
        decimal_places=2,
        label="All-in EURUSD cost at most (USD per lot round turn)",
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    funding = forms.ChoiceField(required=False, label="Funding method")
    negative_balance_protection = forms.BooleanField(required=False, label="Negative balance protection")
    segregated_funds = forms.BooleanField(required=False, label="Segregated client funds")
    include_suspended = forms.BooleanField(required=False, label="Include suspended brokers")
    sort = forms.ChoiceField(required=False, choices=[(k, v[0]) for k, v in SORTS.items()])

    CHECKBOXES = ("negative_balance_protection", "segregated_funds", "include_suspended")

    def __init__(self, data: Any, *, choices: FilterChoices) -> None:
        super().__init__(data)
        self._set_choices(
            "regulator", [(r.slug, f"{r.name} (tier {r.tier})") for r in choices.regulators], "Any regulator"
        )
        self._set_choices("platform", [(p.slug, p.name) for p in choices.platforms], "Any platform")
        self._set_choices("instrument", [(i.symbol, i.symbol) for i in choices.instruments], "Any instrument")
        self._set_choices("funding", [(f.slug, f.name) for f in choices.funding], "Any funding method")

    def _set_choices(self, name: str, options: list[tuple[str, str]], blank: str) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", blank), *options]

    def filters(self) -> DirectoryFilters:
        """The filters of the fields that are valid (call after is_valid(); invalid fields are left out)."""
        data = self.cleaned_data
        return DirectoryFilters(
            regulator=data.get("regulator") or "",
            tier=data.get("tier"),
            platform=data.get("platform") or "",
            instrument=data.get("instrument") or "",
            spread_type=data.get("spread_type") or "",
            min_leverage=data.get("min_leverage"),
            max_deposit=data.get("max_deposit"),
            max_cost=data.get("max_cost"),
            funding=data.get("funding") or "",
            negative_balance_protection=bool(data.get("negative_balance_protection")),
            segregated_funds=bool(data.get("segregated_funds")),
            include_suspended=bool(data.get("include_suspended")),
            sort=data.get("sort") or "score",
        )


def parse_compare(raw: str, *, known: set[str]) -> tuple[list[str], str | None]:
    """Slugs from ``?brokers=a,b,c`` and an error message, or None when they can be compared."""
    slugs = list(dict.fromkeys(s.strip().lower() for s in raw.split(",") if s.strip()))
    unknown = [s for s in slugs if s not in known]
    if unknown:
        shown = ", ".join(s[:40] for s in unknown[:4])
        return slugs, f"Unknown broker: {shown}. Choose brokers from the list."
    if not slugs:
        return slugs, "Choose at least two brokers to compare."
    if len(slugs) > MAX_COMPARE:
        return slugs, f"Compare at most {MAX_COMPARE} brokers at a time."
    return slugs, None
