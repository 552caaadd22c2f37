from django.urls import path

from brokers import views

app_name = "brokers"

urlpatterns = [
    path("", views.home, name="home"),
    path("brokers/", views.directory, name="directory"),
    path("brokers/<slug:slug>/", views.profile, name="profile"),
    path("brokers/<slug:slug>/figures.json", views.profile_json, name="profile_json"),
    path("compare/", views.compare, name="compare"),
]
