from django.urls import URLPattern

# WebSocket routes (the live board's /ws/spreads/ endpoint lands here).
websocket_urlpatterns: list[URLPattern] = []
