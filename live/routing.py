from django.urls import URLPattern, path

from live.consumers import SpreadsConsumer

# WebSocket routes; config/asgi.py puts them behind AllowedHostsOriginValidator(AuthMiddlewareStack(...)).
websocket_urlpatterns: list[URLPattern] = [
    path("ws/spreads/", SpreadsConsumer.as_asgi(), name="ws-spreads"),
]
