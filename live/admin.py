from django.contrib import admin

from live.models import BoardPreference


@admin.register(BoardPreference)
class BoardPreferenceAdmin(admin.ModelAdmin[BoardPreference]):
    list_display = ("user", "updated_at")
    search_fields = ("user__username",)
