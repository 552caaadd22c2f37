"""ASGI entry point for daphne: HTTP through Django, WebSockets through Channels."""

import gc
import os
import threading
import time

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Build the Django app first: it sets up the app registry that the consumers' imports need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

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
# generations, and automatic collections (full ones measured at 150-250 ms) stalled every request
# in flight: they set bench.pages' p99. Those objects are freed by reference counting when daphne
# lets go, so automatic collection is off here: start-up objects are frozen out of collections and
# a background thread collects the little cyclic garbage there is every WEB_GC_INTERVAL_S seconds.
gc.freeze()
gc.disable()


def _collect_periodically(interval: float) -> None:
    while True:
        time.sleep(interval)
        gc.collect()


threading.Thread(target=_collect_periodically, args=(settings.WEB_GC_INTERVAL_S,), name="web-gc", daemon=True).start()
