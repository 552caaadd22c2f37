"""Give a staff account a TOTP device and print the otpauth:// link for an authenticator app.

With ADMIN_REQUIRE_2FA on, staff cannot reach the admin to add their first device there, so the first
one comes from the command line: ``manage.py totp_device_add <username> [--name phone]``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_staff=True).first()
        if user is None:
            raise CommandError(f"no staff account {options['username']!r}")
        device = TOTPDevice.objects.create(user=user, name=options["name"], confirmed=True)
        self.stdout.write(f"Add this to the authenticator app of {user.get_username()}:\n{device.config_url}\n")
