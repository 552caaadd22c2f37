from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Live spreads"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from live.auth import user_saved_or_deleted

        # The WebSocket log-in check caches users (live/auth.py): a saved or deleted user is dropped.
        user = get_user_model()
        post_save.connect(user_saved_or_deleted, sender=user, dispatch_uid="live-user-cache-save")
        post_delete.connect(user_saved_or_deleted, sender=user, dispatch_uid="live-user-cache-delete")
