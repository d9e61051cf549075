"""Personal API tokens, on a page: create one (shown once, never again), list and revoke them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import ApiToken
from lorasite.middleware import needs_account

MAX_TOKENS_PER_USER = 20
EXPIRY_CHOICES = [("30", "in 30 days"), ("90", "in 90 days"), ("365", "in a year"), ("never", "never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What it is for, e.g. “CI launcher”.")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90")

    def expiry(self) -> timedelta | None:
        days = self.cleaned_data["expires"]
        return None if days == "never" else timedelta(days=int(days))


def account_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (else to the login page), and a 503 while the database cannot say who is asking."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if needs_account(request):
            raise DatabaseError("the session could not be read")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


@require_http_methods(["GET", "POST"])
@account_required
def tokens(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST if request.method == "POST" else None)
    new_token = ""
    if form.is_bound and form.is_valid():
        if ApiToken.objects.filter(user=request.user).count() >= MAX_TOKENS_PER_USER:
            form.add_error(None, f"You have {MAX_TOKENS_PER_USER} tokens already: revoke one first.")
        else:
            _, new_token = ApiToken.objects.create(
                user=request.user, expiry=form.expiry(), name=form.cleaned_data["name"]
            )
            form = TokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": ApiToken.objects.filter(user=request.user),
        "api_url": request.build_absolute_uri(reverse("api-estimate")),
        "nav": "tokens",
    }
    response = render(request, "accounts/tokens.html", context, status=400 if form.errors else 200)
    add_never_cache_headers(response)  # the new token is in this page, and only in this page
    return response


@require_POST
@account_required
def revoke(request: HttpRequest) -> HttpResponse:
    digest = request.POST.get("token", "")
    token = ApiToken.objects.filter(user=request.user, digest=digest).first()
    if token is not None:
        token.delete()
        messages.success(request, f"Revoked “{token.name}”: scripts using it now get 401.")
    return HttpResponseRedirect(reverse("tokens"))
