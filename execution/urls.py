from django.urls import path

from execution import views

app_name = "execution"

urlpatterns = [
    path("", views.calculator, name="calculator"),
    path("api/", views.api, name="api"),
]
