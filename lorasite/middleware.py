"""Answers at the edges of every request: what neither a view nor DRF can answer well by itself.

- `EdgeErrorsMiddleware`: an API body over the size limit is a JSON 413 (before it is read, when
  the client says its length); anything the database cannot answer is a clear 503 (JSON under
  ``/api/``), never a bare 500 — whichever view, middleware or DRF class asked.
- `SlashlessWritesMiddleware`: a POST to ``/api/v1/estimate`` is served as ``/api/v1/estimate/``.
  ``APPEND_SLASH`` answers with a redirect, which clients follow with a GET (405) or not at all.
- `AuthenticationMiddleware`: ``django.contrib.auth``'s, except that a session the database cannot
  look up makes the visitor `UnavailableUser` (signed out, flagged): pages that work without an account
  keep working, and those that need one (`needs_account`) answer 503 instead of "please sign in".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.middleware import auser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectNotUpdated, RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import is_valid_path
from django.utils.functional import SimpleLazyObject

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = "30"
DATABASE_DOWN = "The database cannot be reached right now; computing still works. Try again in a moment."


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    message = f"The request body is larger than the limit of {limit:,} bytes."
    if is_api(request):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def gone(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": "No such configuration (it was deleted)."}, status=404)
    return render(request, "calculator/not_found.html", status=404)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        response: HttpResponse = JsonResponse({"detail": DATABASE_DOWN}, status=503)
    else:
        response = render(request, "unavailable.html", {"message": DATABASE_DOWN}, status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


class EdgeErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request) and _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return too_large(request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        """The admin needs the database for everything: a session it cannot read is a 503, not its login."""
        match = request.resolver_match
        if match is not None and match.namespace == "admin" and needs_account(request):
            return database_unavailable(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return too_large(request)
        if isinstance(exception, ObjectNotUpdated):  # deleted meanwhile (a rename racing a delete)
            return gone(request)
        if isinstance(exception, DatabaseError) and not _is_data_error(exception):
            return database_unavailable(request)
        return None


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_data_error(exception: DatabaseError) -> bool:
    """A row the database refused (e.g. PostgreSQL's "unsupported Unicode escape sequence" for NUL) is
    a bug to fix where the input is checked, not an outage to report as one."""
    from django.db import DataError, IntegrityError

    return isinstance(exception, (DataError, IntegrityError))


class SlashlessWritesMiddleware:
    WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if request.method in self.WRITES and not path.endswith("/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf) and is_valid_path(f"{path}/", urlconf):
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)


class UnavailableUser(AnonymousUser):
    """A visitor whose session the database could not look up: signed out for this request."""

    session_unavailable = True


def needs_account(request: HttpRequest) -> bool:
    """True when this request's account is unknown because the database is down (answer 503)."""
    return bool(getattr(request.user, "session_unavailable", False))


def _user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    if not hasattr(request, "_cached_user"):
        try:
            request._cached_user = auth.get_user(request)  # type: ignore[attr-defined]
        except DatabaseError:
            request._cached_user = UnavailableUser()  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined,no-any-return]


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user(request))  # type: ignore[assignment]
        request.auser = partial(auser, request)
