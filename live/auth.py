"""WebSocket log-in check without a database query per connection.

Channels' AuthMiddleware loads the session (the cache: cached_db sessions) and then the user from the
database on every connect. A reconnect storm (a web process restarted behind the load balancer, 1,000
traders coming back at once) then queues a thousand user queries, and with them the thread pool every
handshake waits on, while the live fan-out of the same process competes with them (bench.live
--burst: 500 connections in the burst cost the hub seconds of lag). Here the user comes from the
cache for USER_CACHE_S; the session check (the password hash) is done exactly as Channels does it.

A cached user is dropped when the user row is saved or deleted (password change, deactivation:
live.apps connects the receivers), so those take effect at the next connect. A change made with a
bulk update(), which sends no signal, is seen within USER_CACHE_S.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware, UserLazyObject
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.utils.crypto import constant_time_compare

USER_CACHE_S = 60


def _user_key(user_id: Any) -> str:
    return f"live:user:{user_id}"


def user_from_session(scope: dict[str, Any]) -> Any:
    """The logged-in user of the scope's session, or AnonymousUser (Channels' get_user, cached)."""
    session = scope["session"]
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = cache.get(_user_key(user_id))
    if user is None:
        user = load_backend(backend_path).get_user(user_id)
        if user is None:
            return AnonymousUser()
        cache.set(_user_key(user_id), user, USER_CACHE_S)
    # The same check as Channels and Django: a password change ends every other session.
    session_hash = session.get(HASH_SESSION_KEY)
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        return AnonymousUser()
    return user


def user_cache_drop(*, user_id: Any) -> None:
    cache.delete(_user_key(user_id))


def user_saved_or_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """post_save / post_delete receiver of the user model (live.apps)."""
    user_cache_drop(user_id=instance.pk)


class CachedAuthMiddleware(AuthMiddleware):  # type: ignore[misc]
    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        user = scope["user"]
        assert isinstance(user, UserLazyObject)
        # On the executor's threads, not Channels' one database thread: a storm of handshakes (500 traders
        # connecting at a release) would otherwise queue there one behind the other, behind anything else
        # queued on it, and miss daphne's handshake timeout (bench.live --burst). Thread-safe: it reads the
        # cache and, on a miss, the user row (database_sync_to_async closes that thread's old connections).
        user._wrapped = await database_sync_to_async(user_from_session, thread_sensitive=False)(scope)


def live_auth_stack(inner: Any) -> Any:
    """AuthMiddlewareStack with the cached user: cookies, the session, then the user."""
    return CookieMiddleware(SessionMiddleware(CachedAuthMiddleware(inner)))
