from django.contrib import admin

from trustmetrics.models import TrustScore


@admin.register(TrustScore)
class TrustScoreAdmin(admin.ModelAdmin):
    list_display = ["broker", "computed_at", "overall", "label", "confidence", "methodology_version"]
    list_filter = ["methodology_version", "label", "broker"]
    search_fields = ["broker__name"]
    date_hierarchy = "computed_at"
    list_select_related = ["broker"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # history is never overwritten
