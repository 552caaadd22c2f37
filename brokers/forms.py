"""Validation of public query strings. Unknown values get a 400 with a message, never a 500."""

from __future__ import annotations

from typing import Any

from django import forms

from brokers.models import AccountType
from brokers.selectors import SORTS, DirectoryFilters, FilterChoices

MAX_COMPARE = 4


class DirectoryFilterForm(forms.Form):
    regulator = forms.ChoiceField(required=False)
    tier = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any tier"), ("1", "Tier 1"), ("2", "Tier 2"), ("3", "Tier 3")],
    )
    platform = forms.ChoiceField(required=False)
    instrument = forms.ChoiceField(required=False)
    spread_type = forms.ChoiceField(required=False, choices=[("", "Any account"), *AccountType.SpreadType.choices])
    sort = forms.ChoiceField(required=False, choices=[(k, v[0]) for k, v in SORTS.items()])

    def __init__(self, data: Any, *, choices: FilterChoices) -> None:
        super().__init__(data)
        self._set_choices(
            "regulator", [(r.slug, f"{r.name} (tier {r.tier})") for r in choices.regulators], "Any regulator"
        )
        self._set_choices("platform", [(p.slug, p.name) for p in choices.platforms], "Any platform")
        self._set_choices("instrument", [(i.symbol, i.symbol) for i in choices.instruments], "Any instrument")

    def _set_choices(self, name: str, options: list[tuple[str, str]], blank: str) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", blank), *options]

    def filters(self) -> DirectoryFilters:
        data = self.cleaned_data
        return DirectoryFilters(
            regulator=data["regulator"],
            tier=data["tier"],
            platform=data["platform"],
            instrument=data["instrument"],
            spread_type=data["spread_type"],
            sort=data["sort"] or "score",
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
