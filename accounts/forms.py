from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User


class SignupForm(UserCreationForm[User]):
    email = forms.EmailField(required=True, help_text="For password resets only.")

    class Meta:
        model = User
        fields = ("username", "email")
        field_classes = {"username": UsernameField}

    def clean_email(self) -> str:
        # Whether the address is registered is never said here: accounts.services.user_signup mails
        # its owner instead, and the visitor sees the same answer either way.
        return str(self.cleaned_data["email"].strip().lower())
