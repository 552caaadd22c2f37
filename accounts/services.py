"""Writes of the accounts app."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from common import metrics

logger = logging.getLogger(__name__)


def _mail(*, to: str, template: str, context: dict[str, str]) -> None:
    subject, _, body = render_to_string(template, context).partition("\n")
    send_mail(subject.strip(), body.lstrip("\n"), settings.DEFAULT_FROM_EMAIL, [to])


@transaction.atomic
def user_signup(*, username: str, email: str, password: str) -> User | None:
    """Sign a visitor up without saying whether the email is registered.

    A new address gets an inactive account and a link that activates it (accounts.views.signup_activate).
    A registered address gets nothing new: its owner is mailed that someone tried to sign up with it,
    with links to log in and to reset the password. Both cost a password hash and one mail, so neither
    the answer nor its timing tells them apart. Returns the new user, or None.
    """
    if User.objects.filter(email__iexact=email).exists():
        make_password(password)  # the same work as creating an account
        owner = User.objects.filter(email__iexact=email).order_by("pk").first()
        context = {
            "username": owner.get_username() if owner else "",
            "login_url": settings.SITE_URL + reverse("accounts:login"),
            "reset_url": settings.SITE_URL + reverse("accounts:password_reset"),
        }
        transaction.on_commit(lambda: _mail(to=email, template="accounts/signup_exists_email.txt", context=context))
        metrics.incr("signup_existing_email")
        return None
    user = User.objects.create_user(username=username, email=email, password=password, is_active=False)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    context = {
        "username": username,
        "activate_url": settings.SITE_URL + reverse("accounts:signup_activate", args=[uid, token]),
    }
    transaction.on_commit(lambda: _mail(to=email, template="accounts/signup_activate_email.txt", context=context))
    return user


@transaction.atomic
def user_activate(*, user: User) -> User:
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user
