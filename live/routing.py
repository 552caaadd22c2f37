from django.urls import URLPattern, path

from live.consumers import SpreadsConsumer

# WebSocket routes; config/asgi.py puts them behind AllowedHostsOriginValidator(live_auth_stack(...)).
websocket_urlpatterns: list[URLPattern] = [
    path("ws/spreads/", SpreadsConsumer.as_asgi(), name="ws-spreads"),
]
