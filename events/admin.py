from django.contrib import admin

from events.models import EventReport


@admin.register(EventReport)
class EventReportAdmin(admin.ModelAdmin[EventReport]):
    list_display = ["event", "generated_at", "best_broker", "worst_broker", "brokers_measured"]
    list_select_related = ["event", "best_broker", "worst_broker"]
    readonly_fields = ["event", "generated_at", "best_broker", "worst_broker", "brokers_measured", "series"]
