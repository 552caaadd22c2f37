from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.contrib.auth.models import User

from accounts.selectors import login_username


def email_normalize(value: str) -> str:
    """Addresses are compared and stored in lower case: the one spelling of an account's email and username."""
    return value.strip().lower()


class SignupForm(forms.Form):
    # Sign-up asks for an email only, which becomes the username once the address is confirmed: a username
    # chosen here would have to be refused when taken, and that refusal would say that it exists.
    email = forms.EmailField(
        max_length=150,  # a username's length
        help_text="We send a link there; open it to choose your password. You log in with this address.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def clean_email(self) -> str:
        # Whether the address is registered is never said here: accounts.services.signup_request mails it
        # either way, and the visitor sees the same answer.
        return email_normalize(self.cleaned_data["email"])


class SignupPasswordForm(SetPasswordMixin, forms.Form):  # type: ignore[type-arg]  # generic in the stubs only
    """The second step of sign-up, behind the mailed link: choose the password of the confirmed address."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        self.validate_passwords()
        self.validate_password_for_user(User(username=self.email, email=self.email))
        return super().clean() or {}


class LoginForm(AuthenticationForm):
    """Log in with the email (the username of every account made by sign-up) or an older username."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email or username"

    def clean_username(self) -> str:
        # The account's own username, whichever spelling was typed (its email in any case, or its username):
        # the backend then finds it by its exact name, and the limits count every spelling as one account.
        return login_username(typed=str(self.cleaned_data.get("username") or ""))
