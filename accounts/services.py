"""Writes of the accounts app."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.selectors import SIGNUP_SALT, account_of_email
from common import metrics

logger = logging.getLogger(__name__)


def _mail(*, to: str, template: str, context: dict[str, str]) -> None:
    subject, _, body = render_to_string(template, context).partition("\n")
    send_mail(subject.strip(), body.lstrip("\n"), settings.DEFAULT_FROM_EMAIL, [to])


def signup_request(*, email: str) -> None:
    """Sign-up's first step: mail the address, never saying to the visitor whether it is registered.

    A new address gets a link to choose a password (accounts.views.signup_password), which makes the
    account; nothing is stored before the address is confirmed, so nobody can hold an address they do
    not read. A registered address gets nothing new: its owner is mailed that someone tried to sign up
    with it, with links to log in and to reset the password. Either way one mail and the same answer.
    """
    owner = account_of_email(email=email)
    if owner is not None and not _never_activated(owner):
        context = {
            "username": owner.get_username(),
            "login_url": settings.SITE_URL + reverse("accounts:login"),
            "reset_url": settings.SITE_URL + reverse("accounts:password_reset"),
        }
        template = "accounts/signup_exists_email.txt"
        metrics.incr("signup_existing_email")
    else:
        token = signing.dumps(email, salt=SIGNUP_SALT)
        activate_url = settings.SITE_URL + reverse("accounts:signup_password", args=[token])
        context = {"email": email, "activate_url": activate_url}
        template = "accounts/signup_activate_email.txt"
    transaction.on_commit(lambda: _mail(to=email, template=template, context=context))


def _never_activated(user: User) -> bool:
    # An account an earlier sign-up made inactive, whose link was never opened: whoever opens a new link
    # for the address proves they read it and gets the account, with their own password.
    return not user.is_active and user.last_login is None


@transaction.atomic
def user_signup(*, email: str, password: str) -> User | None:
    """Sign-up's second step, for a confirmed address: make its account, active, with `email` as username.

    Returns None when the address has an account by now (its link was used already, or it was
    registered meanwhile): the caller says the link is no longer valid.
    """
    owner = account_of_email(email=email)
    if owner is not None:
        if not _never_activated(owner):
            return None
        owner.username, owner.is_active = email, True
        owner.set_password(password)
        owner.save(update_fields=["username", "password", "is_active"])
        return owner
    try:
        with transaction.atomic():
            return User.objects.create_user(username=email, email=email, password=password)
    except IntegrityError:  # the same link, opened twice at once: the other request made the account
        return None
