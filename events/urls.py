from django.urls import path

from events import views

app_name = "events"

urlpatterns = [
    path("", views.archive, name="archive"),
    path("<int:event_id>/", views.detail, name="detail"),
]
