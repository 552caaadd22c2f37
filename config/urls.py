from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("live/", include("live.urls")),
    path("methodology/", include("trustmetrics.urls")),
    path("execution/", include("execution.urls")),
    path("", include("brokers.urls")),
]

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
