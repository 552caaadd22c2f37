from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from accounts.forms import SignupForm
from accounts.services import user_activate, user_signup


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("live:board")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        # The same answer whether or not the email was registered (accounts.services.user_signup).
        return redirect("accounts:signup_sent")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/signup.html", {"form": form}, status=status)


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_sent.html")


def signup_activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or user.is_active or not default_token_generator.check_token(user, token):
        return render(request, "accounts/signup_invalid.html", status=400)
    login(request, user_activate(user=user), backend="django.contrib.auth.backends.ModelBackend")
    return redirect("live:board")
