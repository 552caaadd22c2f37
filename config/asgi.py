"""ASGI entry point for daphne: HTTP through Django, WebSockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.handler import pooled_asgi_application

# Build the Django app first: it sets up the app registry that the consumers' imports need. Requests
# that reach Django run on a pool of threads, not a new thread each (config/handler.py).
django_asgi_app = pooled_asgi_application()

from django.urls import get_resolver  # noqa: E402

# Import every URL module (each app's views, the API's schemas) now, not on the first request: Django
# resolves a request's URL on the event loop, and that first import (100-200 ms) held every live client of
# the process (found in bench.live --burst: the first /readyz request stalled the calm phase's quotes).
get_resolver().url_patterns  # noqa: B018 (the property's side effect is the point)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from live import transport  # noqa: E402
from live.auth import live_auth_stack  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402
from pagecache.asgi import CachedPagesMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Fresh regenerated pages for anonymous visitors are answered before Django; the rest goes through.
        "http": CachedPagesMiddleware(django_asgi_app),
        # The log-in check takes the user from the cache, not the database, on each connect (live/auth.py).
        "websocket": AllowedHostsOriginValidator(live_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)

# Check once, at start-up, the library internals the live fan-out relies on (live/transport.py).
transport.selfcheck(enabled=settings.LIVE_TRANSPORT_FAST)
