from __future__ import annotations

from django.conf import settings
from django.db import models


class BoardPreference(models.Model):
    """What one trader chose to watch on the live board. Empty lists mean "everything"."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="board_preference")
    instruments = models.JSONField(default=list, blank=True, help_text="Canonical symbols, in display order.")
    brokers = models.JSONField(default=list, blank=True, help_text="Broker slugs, in display order.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"board of {self.user_id}"
