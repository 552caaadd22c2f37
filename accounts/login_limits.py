"""Log-in limits, with django-axes: the client's real address, and two limits of different height.

django-axes compares one count with one limit. Its lock-out parameters here are
``[["username", "ip_address"], "ip_address"]`` (settings.AXES_LOCKOUT_PARAMETERS): failures for one
account from one address, and failures from one address for any account. The handler below scales
the second count so that it reaches AXES_FAILURE_LIMIT exactly when it reaches LOGIN_IP_FAILURE_LIMIT,
so one comparison serves both limits; and a successful log-in clears only that account's count from
that address, so a guesser cannot reset their address's count by logging in to an account of their own.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.http import HttpRequest

from common import metrics
from common.http import client_ip

__all__ = ["LoginLimitHandler", "client_ip"]  # client_ip: settings.AXES_CLIENT_IP_CALLABLE


class LoginLimitHandler(AxesDatabaseHandler):  # type: ignore[misc]  # django-axes ships no type hints
    """django-axes' database handler (the limits hold while Redis is down) with a higher per-IP limit."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        per_account_and_ip, per_ip = (
            sum(a.failures_since_start for a in attempts) for attempts in self.get_user_attempts(request, credentials)
        )
        scaled_ip = per_ip * settings.AXES_FAILURE_LIMIT // settings.LOGIN_IP_FAILURE_LIMIT
        return int(max(per_account_and_ip, scaled_ip))

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        account_and_ip = self.filter_user_attempts(request, credentials)[0]
        count, _ = account_and_ip.delete()
        return int(count)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        metrics.incr("login_failed")
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and getattr(request, "axes_locked_out", False):
            metrics.incr("login_rate_limited")
