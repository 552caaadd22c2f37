from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from trustmetrics import services, tasks
from trustmetrics.models import TrustScore


@admin.register(TrustScore)
class TrustScoreAdmin(admin.ModelAdmin[TrustScore]):
    list_display = ["broker", "computed_at", "overall", "label", "confidence", "methodology_version"]
    list_filter = ["methodology_version", "label", "broker"]
    search_fields = ["broker__name"]
    date_hierarchy = "computed_at"
    list_select_related = ["broker"]
    readonly_fields = ["reason"]
    actions = ["recompute_now"]

    def has_change_permission(self, request: HttpRequest, obj: TrustScore | None = None) -> bool:
        return False  # history is never overwritten

    @admin.action(description="Recompute all trust scores now (scores are relative, so every broker is rescored)")
    def recompute_now(self, request: HttpRequest, queryset: QuerySet[TrustScore]) -> None:
        as_of = timezone.now().replace(microsecond=0).isoformat()
        if settings.PAGECACHE_BACKGROUND == "celery":
            transaction.on_commit(lambda: tasks.trust_recompute.delay(as_of))
            self.message_user(request, f"Recompute queued for {as_of}; new scores appear within a minute.")
            return
        run = services.trust_scores_compute(as_of=timezone.now())
        self.message_user(
            request, f"Recomputed {len(run.results)} brokers, {len(run.changed)} changed.", messages.SUCCESS
        )
