"""The WebSocket log-in check (live/auth.py): the user from the cache, the session checked as always."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.cached_db import SessionStore
from django.core.cache import cache

from live.auth import user_from_session


def _scope_for(user) -> dict:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"session": SessionStore(session_key=session.session_key)}


@pytest.fixture
def trader(db):
    user = get_user_model().objects.create_user("ws-trader", "ws@example.com", "a-long-secret-1")
    cache.delete(f"live:user:{user.pk}")
    return user


def test_a_second_connect_with_the_same_session_does_not_query_the_users_table(trader, django_assert_num_queries):
    assert user_from_session(_scope_for(trader)).pk == trader.pk
    scope = _scope_for(trader)
    scope["session"].load()  # the session itself comes from the cache (cached_db): not what is counted here
    with django_assert_num_queries(0):
        assert user_from_session(scope).pk == trader.pk


def test_a_password_change_ends_the_old_sessions_at_the_next_connect(trader):
    scope = _scope_for(trader)
    assert user_from_session(scope).is_authenticated  # now cached
    trader.set_password("another-long-secret-2")
    trader.save()
    assert not _fresh(scope)["user"].is_authenticated


def test_a_deactivated_trader_is_refused_at_the_next_connect(trader):
    scope = _scope_for(trader)
    assert user_from_session(scope).is_authenticated
    trader.is_active = False
    trader.save()
    assert not _fresh(scope)["user"].is_authenticated


def test_a_session_without_a_user_or_with_an_unknown_backend_is_anonymous(trader):
    assert not user_from_session({"session": SessionStore()}).is_authenticated
    scope = _scope_for(trader)
    scope["session"][BACKEND_SESSION_KEY] = "somewhere.else.Backend"
    assert not user_from_session(scope).is_authenticated


def _fresh(scope: dict) -> dict:
    return {"user": user_from_session({"session": SessionStore(session_key=scope["session"].session_key)})}
