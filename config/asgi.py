"""ASGI entry point for daphne: HTTP through Django, WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Build the Django app first: it sets up the app registry that the consumers' imports need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402
from pagecache.asgi import CachedPagesMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Fresh regenerated pages for anonymous visitors are answered before Django; the rest goes through.
        "http": CachedPagesMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Garbage collection in the web process. Daphne keeps each finished request's objects until its
# once-a-second reaper runs, so at thousands of requests a second they outlive the young
# generations and full collections of the whole heap (150-250 ms, measured) ran every second or
# so, stalling every request in flight. Freezing what start-up loaded keeps it out of every
# collection, and fewer, larger young collections keep full ones rare (bench.pages' p99).
gc.freeze()
gc.set_threshold(5_000, 10, 200)
