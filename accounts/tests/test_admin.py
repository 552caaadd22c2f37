"""The admin: a second factor (TOTP) for staff when ADMIN_REQUIRE_2FA is on, and a log of who did what."""

from __future__ import annotations

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import login_limits

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def staff(settings) -> User:
    settings.ADMIN_REQUIRE_2FA = True
    return User.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def token_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def test_with_two_factor_on_a_password_alone_does_not_open_the_admin(client, staff, settings):
    TOTPDevice.objects.create(user=staff, name="phone")
    login = f"/{settings.ADMIN_URL}login/"
    response = client.post(login, {"username": "boss", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    client.force_login(staff)  # a session from the site's own log-in is not verified either
    index = client.get(f"/{settings.ADMIN_URL}")
    assert index.status_code == 302
    assert index["Location"].startswith(login)


def test_with_two_factor_on_staff_log_in_with_password_and_totp_code(client, staff, settings):
    device = TOTPDevice.objects.create(user=staff, name="phone")
    response = client.post(
        f"/{settings.ADMIN_URL}login/",
        {"username": "boss", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": token_of(device)},
    )
    assert response.status_code == 302, response.content[:2000]
    assert client.get(f"/{settings.ADMIN_URL}").status_code == 200


def test_a_wrong_totp_code_counts_as_a_failed_log_in(client, staff, settings, monkeypatch):
    monkeypatch.setattr(login_limits, "_clock", lambda: 1_800_000_000.0)  # no wait may end during the test
    device = TOTPDevice.objects.create(user=staff, name="phone")
    wrong = f"{(int(token_of(device)) + 1) % 10**6:06d}"
    for _ in range(settings.LOGIN_FAILURE_LIMIT):  # the right password, a wrong code
        client.post(
            f"/{settings.ADMIN_URL}login/",
            {"username": "boss", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": wrong},
        )
    assert "_auth_user_id" not in client.session
    locked = client.post(
        f"/{settings.ADMIN_URL}login/",
        {"username": "boss", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": token_of(device)},
    )
    assert locked.status_code == 429


def test_admin_changes_are_kept_and_logged_with_who_did_what(client, settings, caplog):
    boss = User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    trader = User.objects.create_user("trader", "trader@example.com", PASSWORD)
    client.force_login(boss)
    with caplog.at_level(logging.INFO, logger="accounts.admin_actions"):
        response = client.post(
            f"/{settings.ADMIN_URL}auth/user/{trader.pk}/change/",
            {
                "username": "trader",
                "email": "new@example.com",
                "is_active": "on",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        )
    assert response.status_code == 302, response.content[:3000]
    entry = LogEntry.objects.get()
    assert entry.user == boss
    assert entry.object_repr == "trader"
    assert any(
        "admin: user boss" in r.getMessage() and "changed user 'trader'" in r.getMessage() for r in caplog.records
    )
    assert client.get(f"/{settings.ADMIN_URL}admin/logentry/").status_code == 200


def test_staff_get_their_first_totp_device_from_the_command_line(staff):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("totp_device_add", "boss", "--name", "phone", stdout=out)
    device = TOTPDevice.objects.get(user=staff)
    assert device.name == "phone"
    assert "otpauth://totp/" in out.getvalue()
