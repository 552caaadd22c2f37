from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.index, name="index"),
    path("watchlists/", views.watchlist_create, name="watchlist_create"),
    path("watchlists/<int:watchlist_id>/delete/", views.watchlist_delete, name="watchlist_delete"),
    path("new/", views.alert_create, name="alert_create"),
    path("<int:alert_id>/delete/", views.alert_delete, name="alert_delete"),
]
