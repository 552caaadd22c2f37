from django.urls import path, re_path

from api import views
from api.endpoints import api
from api.errors import not_found

urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<rest>.*)$", not_found),
    path("account/api-keys/", views.keys, name="api_keys"),
    path("account/api-keys/<int:key_id>/revoke/", views.key_revoke, name="api_key_revoke"),
]
