from django.urls import path

from live import views

app_name = "live"

urlpatterns = [
    path("", views.board, name="board"),
    path("preferences/", views.preferences, name="preferences"),
]
