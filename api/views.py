"""The account page for API keys: create (the secret is shown once) and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api.forms import ApiKeyCreateForm
from api.selectors import api_keys_for
from api.services import ApiKeyError, api_key_create, api_key_revoke


@never_cache
@login_required
def keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, secret = api_key_create(user=request.user, name=form.cleaned_data["name"])  # type: ignore[arg-type]
                form = ApiKeyCreateForm()
            except ApiKeyError as exc:
                form.add_error(None, str(exc))
                status = 400
        else:
            status = 400
    context = {"form": form, "keys": api_keys_for(user=request.user), "secret": secret}
    return render(request, "api/keys.html", context, status=status)


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_revoke(user=request.user, key_id=key_id)  # type: ignore[arg-type]
    if key is None:
        messages.error(request, "No such key.")
    else:
        messages.success(request, f"Key '{key.name}' revoked: it no longer works.")
    return redirect("api_keys")
