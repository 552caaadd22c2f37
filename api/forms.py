from __future__ import annotations

from django import forms


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=60,
        label="What is the key for?",
        help_text="A name you will recognise, e.g. 'research notebook'.",
        error_messages={"required": "Give the key a name."},
    )
