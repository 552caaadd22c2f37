"""Admin actions are logged as well as kept in Django's LogEntry: who did what to which object."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

logger = logging.getLogger("accounts.admin_actions")


@receiver(post_save, sender=LogEntry)
def admin_action_log(sender: type[LogEntry], instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    action = {1: "added", 2: "changed", 3: "deleted"}.get(instance.action_flag, "acted on")
    user: Any = instance.user
    content_type: Any = instance.content_type
    logger.info(
        "admin: user %s (id %s) %s %s %r (id %s): %s",
        user.get_username(),
        instance.user_id,
        action,
        content_type.model if content_type is not None else "object",
        instance.object_repr,
        instance.object_id,
        instance.get_change_message() or "-",
    )
