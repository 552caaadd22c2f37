from django.urls import URLPattern, path, re_path

from api import views
from api.endpoints import api
from api.errors import json_methods, not_found

# Not `app_name`: a module-level name of that spelling would namespace this whole URLconf.
_api_patterns, _api_app, _api_namespace = api.urls
for pattern in _api_patterns:
    assert isinstance(pattern, URLPattern)  # ninja's routes are flat
    pattern.callback = json_methods(pattern.callback)

urlpatterns = [
    path("api/v1/", (_api_patterns, _api_app, _api_namespace)),
    re_path(r"^api/v1/(?P<rest>.*)$", not_found),
    path("account/api-keys/", views.keys, name="api_keys"),
    path("account/api-keys/<int:key_id>/revoke/", views.key_revoke, name="api_key_revoke"),
]
