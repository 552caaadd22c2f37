"""The admin site: staff log in with a TOTP code as well as the password when ADMIN_REQUIRE_2FA is on.

It replaces django.contrib.admin's default site (accounts.apps.StaffAdminConfig), so every app's
``admin.site.register`` lands here. The setting is read on each request, not at import, so a test
can turn it on and off.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class StaffAdminSite(OTPAdminSite):  # type: ignore[misc]  # django-otp ships no type hints
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    @property
    def login_form(self) -> Any:
        return OTPAdminAuthenticationForm if settings.ADMIN_REQUIRE_2FA else AdminAuthenticationForm

    @property
    def login_template(self) -> str | None:
        return "otp/admin111/login.html" if settings.ADMIN_REQUIRE_2FA else None

    def has_permission(self, request: HttpRequest) -> bool:
        if settings.ADMIN_REQUIRE_2FA:
            return bool(super().has_permission(request))
        return AdminSite.has_permission(self, request)
