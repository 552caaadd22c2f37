from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import SignupForm, SignupPasswordForm
from accounts.selectors import signup_token_email
from accounts.services import signup_request, user_signup


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("live:board")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        signup_request(email=form.cleaned_data["email"])
        # The same answer whether or not the address is registered (accounts.services.signup_request).
        return redirect("accounts:signup_sent")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/signup.html", {"form": form}, status=status)


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_sent.html")


def signup_password(request: HttpRequest, token: str) -> HttpResponse:
    """The mailed link: the address is confirmed; choosing a password makes the account and logs it in."""
    email = signup_token_email(token=token)
    if email is None:
        return render(request, "accounts/signup_invalid.html", status=400)
    form = SignupPasswordForm(request.POST or None, email=email)
    if request.method == "POST" and form.is_valid():
        user = user_signup(email=email, password=form.cleaned_data["password1"])
        if user is None:  # the link was used already
            return render(request, "accounts/signup_invalid.html", status=400)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("live:board")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/signup_password.html", {"form": form, "email": email}, status=status)
