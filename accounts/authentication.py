"""How the API knows who is calling: the browser's session (with CSRF) or a personal API token.

HTTP Basic is deliberately absent: it sends a password with every request and lets anyone guess
passwords at the API without the login page's lockout.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import authentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from lorasite.middleware import DATABASE_DOWN, needs_account


class AccountUnavailable(APIException):
    status_code = 503
    default_detail = DATABASE_DOWN
    default_code = "database_unavailable"


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's, but a session the database could not look up is a 503, not an anonymous caller."""

    def authenticate(self, request: Request) -> Any:
        if needs_account(request._request):
            raise AccountUnavailable()
        return super().authenticate(request)


class TokenAuthentication(KnoxTokenAuthentication):  # type: ignore[misc]  # knox ships no types
    """``Authorization: Token lorasite_…`` (knox: the digest of the token is looked up, never the token)."""


class SessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The schema's name for the session: a cookie (and the CSRF header on writes)."""

    target_class = SessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The schema's name for a personal API token: ``Authorization: Token lorasite_…``."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A personal API token (create one at /accounts/tokens/), sent as `Token <token>`.",
        }
