"""Forms of the live board."""

from __future__ import annotations

from typing import Any, cast

from django import forms


class BoardPreferenceForm(forms.Form):
    instruments = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    brokers = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, instruments: list[str], brokers: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["instruments"]).choices = [(s, s) for s in instruments]
        cast(forms.MultipleChoiceField, self.fields["brokers"]).choices = brokers
