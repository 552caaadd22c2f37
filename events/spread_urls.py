from django.urls import path

from events import views

app_name = "spreads"

urlpatterns = [
    path("<slug:slug>/<str:symbol>/", views.spreads, name="detail"),
]
