"""Forms of the alerts page: what a trader may watch and when to be told. Unknown choices get a message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from alerts.models import Alert, Watchlist
from brokers.models import AccountType, Broker, Instrument


class AccountChoiceField(forms.ModelChoiceField[AccountType]):
    def label_from_instance(self, obj: AccountType) -> str:
        return f"{obj.broker.name}: {obj.name}"


class WatchlistForm(forms.Form):
    name = forms.CharField(max_length=60, error_messages={"required": "Name the watchlist."})
    brokers = forms.ModelMultipleChoiceField(
        queryset=Broker.objects.order_by("name"),
        to_field_name="slug",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one broker."},
    )
    instruments = forms.ModelMultipleChoiceField(
        queryset=Instrument.objects.all(),
        to_field_name="symbol",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every instrument.",
    )


class AlertForm(forms.Form):
    kind = forms.ChoiceField(choices=Alert.Kind.choices, label="Tell me when")
    broker = forms.ModelChoiceField(
        queryset=Broker.objects.order_by("name"), to_field_name="slug", required=False, empty_label="—"
    )
    watchlist = forms.ModelChoiceField(
        queryset=Watchlist.objects.none(), required=False, empty_label="—", label="or any broker in watchlist"
    )
    instrument = forms.ModelChoiceField(
        queryset=Instrument.objects.all(),
        to_field_name="symbol",
        required=False,
        empty_label="Any instrument",
        help_text="Spread alerts only.",
    )
    account = AccountChoiceField(
        queryset=AccountType.objects.select_related("broker").order_by("broker__name", "min_deposit", "name"),
        required=False,
        empty_label="Its feed account",
        label="Account",
        help_text="Spread alerts on one broker. An account priced apart from the feed account is watched as the "
        "live feed spread plus the published mark-up difference (as its cost is derived).",
    )
    threshold_pips = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, label="Spread above (pips)"
    )
    for_seconds = forms.IntegerField(required=False, min_value=0, max_value=86400, label="for at least (seconds)")
    score_points = forms.FloatField(required=False, min_value=0.1, max_value=100, label="Score moves by (points)")
    email = forms.BooleanField(required=False, initial=True, label="Also email me")

    def __init__(self, *args: Any, user_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        watchlist = self.fields["watchlist"]
        assert isinstance(watchlist, forms.ModelChoiceField)
        watchlist.queryset = Watchlist.objects.filter(user_id=user_id or 0)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("broker")) == bool(data.get("watchlist")):
            self.add_error("broker", "Choose a broker or a watchlist (one of the two).")
        kind = data.get("kind")
        account = data.get("account")
        if account is not None:
            if kind != Alert.Kind.SPREAD_ABOVE or not data.get("broker"):
                self.add_error("account", "An account can be chosen only for a spread alert on one broker.")
            elif account.broker_id != data["broker"].pk:
                self.add_error("account", f"Choose one of {data['broker'].name}'s accounts.")
        if kind == Alert.Kind.SPREAD_ABOVE and data.get("threshold_pips") is None:
            self.add_error("threshold_pips", "Give the spread level in pips.")
        if kind == Alert.Kind.SCORE_MOVE and not data.get("score_points"):
            self.add_error("score_points", "Give the smallest move, in points, that you want to hear about.")
        return data
