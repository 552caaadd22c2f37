from __future__ import annotations

import asyncio

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from marketdata.feeds.probe import feed_probe
from marketdata.feeds.secrets import SecretMissing
from marketdata.models import EconomicEvent, FeedConfig, FeedStatusChange, FeedSymbol, QuoteRejectionCount, SpreadBar
from marketdata.selectors import feed_adapter_params


@admin.register(EconomicEvent)
class EconomicEventAdmin(admin.ModelAdmin[EconomicEvent]):
    list_display = ["scheduled_at", "name", "currency", "impact"]
    list_filter = ["impact", "currency"]
    search_fields = ["name", "currency"]
    date_hierarchy = "scheduled_at"


class FeedSymbolInline(admin.TabularInline[FeedSymbol, FeedConfig]):
    model = FeedSymbol
    extra = 1
    autocomplete_fields = ["instrument"]
    fields = ["venue_symbol", "instrument", "price_precision", "size_precision"]


@admin.register(FeedConfig)
class FeedConfigAdmin(admin.ModelAdmin[FeedConfig]):
    list_display = ["broker", "account", "adapter", "enabled", "status", "status_since"]
    list_filter = ["enabled", "adapter"]
    list_editable = ["enabled"]
    search_fields = ["broker__name"]
    inlines = [FeedSymbolInline]
    fields = ["broker", "account", "adapter", "enabled", "params", "secret_refs"]
    actions = ["test_connection"]

    @admin.action(description="Test connection (connect, log on, wait for one quote)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[FeedConfig]) -> None:
        timeout = float(getattr(settings, "FEED_PROBE_TIMEOUT_S", 15.0))
        for config in queryset.select_related("broker")[:5]:  # each waits up to `timeout`: keep it short
            slug = config.broker.slug
            try:
                params = {"seed": settings.LIVE_SIM_SEED, **feed_adapter_params(config=config)}
            except SecretMissing as exc:
                self.message_user(request, f"{slug}: credential missing: {exc}", messages.ERROR)
                continue
            result = asyncio.run(feed_probe(adapter=config.adapter, broker=slug, params=params, timeout_s=timeout))
            extra = f" (rejected: {result.rejects})" if result.rejects else ""
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{slug} via {config.adapter}: {result.summary}{extra}", level)

    def get_queryset(self, request: HttpRequest) -> QuerySet[FeedConfig]:
        latest = FeedStatusChange.objects.filter(broker=OuterRef("broker_id")).order_by("-at")
        return (
            super()
            .get_queryset(request)
            .select_related("broker", "account")
            .annotate(current_status=Subquery(latest.values("status")[:1]), since=Subquery(latest.values("at")[:1]))
        )

    @admin.display(description="feed status", ordering="current_status")
    def status(self, obj: FeedConfig) -> str:
        return str(getattr(obj, "current_status", None) or "never seen")

    @admin.display(description="since", ordering="since")
    def status_since(self, obj: FeedConfig) -> object:
        return getattr(obj, "since", None)


@admin.register(FeedStatusChange)
class FeedStatusChangeAdmin(admin.ModelAdmin[FeedStatusChange]):
    list_display = ["at", "broker", "status", "detail"]
    list_filter = ["status", "broker"]
    date_hierarchy = "at"

    # History is written by the ingestors only.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: FeedStatusChange | None = None) -> bool:
        return False


@admin.register(QuoteRejectionCount)
class QuoteRejectionCountAdmin(admin.ModelAdmin[QuoteRejectionCount]):
    list_display = ["hour", "broker", "reason", "count"]
    list_filter = ["reason", "broker"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: QuoteRejectionCount | None = None) -> bool:
        return False


@admin.register(SpreadBar)
class SpreadBarAdmin(admin.ModelAdmin[SpreadBar]):
    list_display = ["start", "broker", "instrument", "account", "resolution", "mean", "count", "dev_min", "dev_max"]
    list_filter = ["resolution", "broker", "instrument"]
    list_select_related = ["broker", "instrument", "account"]
    show_full_result_count = False  # counting millions of bars on every page view is slow

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SpreadBar | None = None) -> bool:
        return False
