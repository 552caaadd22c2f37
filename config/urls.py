from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path
from django.views.decorators.cache import cache_page

from brokers.sitemaps import SITEMAPS
from config import views
from config.metrics import metrics_view

urlpatterns = [
    path(settings.ADMIN_URL, admin.site.urls),  # from the environment (ADMIN_URL)
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("readyz", views.readyz, name="readyz"),
    path("robots.txt", views.robots_txt, name="robots"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("sitemap.xml", cache_page(3600)(sitemap), {"sitemaps": SITEMAPS}, name="sitemap"),
    path("accounts/", include("accounts.urls")),
    path("live/", include("live.urls")),
    path("methodology/", include("trustmetrics.urls")),
    path("execution/", include("execution.urls")),
    path("", include("api.urls")),
    path("account/alerts/", include("alerts.urls")),
    path("events/", include("events.urls")),
    path("spreads/", include("events.spread_urls")),
    path("", include("brokers.urls")),
]

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
