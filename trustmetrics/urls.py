from django.urls import path

from trustmetrics import views

app_name = "trustmetrics"

urlpatterns = [
    path("", views.methodology, name="methodology"),
]
