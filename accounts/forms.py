from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.http import HttpRequest

from accounts.ratelimit import login_blocked_for, login_failure_record, login_failures_clear
from common import metrics


def client_ip(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return str(request.META.get("REMOTE_ADDR") or "unknown")


class RateLimitedAuthenticationForm(AuthenticationForm):
    """The standard login form, refusing to even check the password once too many attempts failed."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "rate_limited": "Too many failed log-in attempts. Try again in %(minutes)s minute(s).",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        wait = login_blocked_for(ip=ip, username=username)
        if wait:
            metrics.incr("login_rate_limited")
            raise forms.ValidationError(
                self.error_messages["rate_limited"], code="rate_limited", params={"minutes": (wait + 59) // 60}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                login_failure_record(ip=ip, username=username)
            raise
        login_failures_clear(username=username)
        return cleaned


class SignupForm(UserCreationForm[User]):
    email = forms.EmailField(required=True, help_text="For password resets only.")

    class Meta:
        model = User
        fields = ("username", "email")
        field_classes = {"username": UsernameField}

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Log in or reset your password.")
        return str(email)
