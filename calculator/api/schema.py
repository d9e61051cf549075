"""How the OpenAPI document is made: drf-spectacular's `AutoSchema` plus what every operation shares.

The views declare their success answers (``@extend_schema``); the error answers follow from what a view
is, so they are added here once, in the shapes `calculator.api.errors` and `lorasite.middleware` produce:

- a body (POST, PATCH): 400 (the wrong fields, nested like the request) and 413 (over the size limit);
- DRF's content negotiation (all views but the two that only speak JSON, ``negotiates = False``): 406 for an
  ``Accept`` that excludes JSON, and 415 for a body that is not JSON;
- authentication (a session or a personal API token): 401 for a bad, expired or revoked token; on writes
  also 403 (no CSRF token with the session, or not the owner);
- a path parameter: 404;
- a rate limit on the action (``throttled_actions``): 429 with ``Retry-After``;
- the database (authentication looks up sessions and tokens; a queryset): 503 with ``Retry-After`` when it
  cannot be reached. The preset catalog, the estimate and the plan answer without it (the seed catalog).

Operations that anyone may call (``anonymous_actions``, or DRF's ``AllowAny``) also accept no credentials.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions

from calculator.api.openapi import BadRequestOut, ErrorOut

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    description="Seconds to wait before trying again.",
    response=[429, 503],
    required=True,
)
ERRORS = {
    400: OpenApiResponse(BadRequestOut, 'Invalid input: `{"field": ["message"]}`, nested for nested fields.'),
    406: OpenApiResponse(ErrorOut, "The `Accept` header excludes `application/json`, the only answer there is."),
    415: OpenApiResponse(ErrorOut, "The body is not `application/json`."),
    401: OpenApiResponse(ErrorOut, "The token is unknown, expired or revoked, or this needs a signed-in user."),
    403: OpenApiResponse(ErrorOut, "Not allowed: not the owner, or a session write without its CSRF token."),
    404: OpenApiResponse(ErrorOut, "Nothing by that slug."),
    413: OpenApiResponse(ErrorOut, "The request body is larger than the limit (`DATA_UPLOAD_MAX_MEMORY_SIZE`)."),
    429: OpenApiResponse(ErrorOut, "Too many anonymous saves: try again after `Retry-After` seconds."),
    503: OpenApiResponse(ErrorOut, "The database cannot be reached; try again after `Retry-After` seconds."),
}


class AutoSchema(openapi.AutoSchema):
    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), RETRY_AFTER]

    def get_auth(self) -> list[Any]:
        auths: list[Any] = super().get_auth()
        if auths and {} not in auths and self._allows_anonymous():
            auths.append({})
        return auths

    def _allows_anonymous(self) -> bool:
        action = getattr(self.view, "action", None)
        return action in getattr(self.view, "anonymous_actions", ()) or any(
            isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()
        )

    def error_statuses(self) -> list[int]:
        statuses = []
        negotiates = getattr(self.view.content_negotiation_class, "negotiates", True)
        if self.method in BODY_METHODS:
            statuses += [400, 413, 415] if negotiates else [400, 413]
        if negotiates:
            statuses.append(406)
        if self.view.get_authenticators():
            statuses.append(401)
            if self.method not in permissions.SAFE_METHODS:
                statuses.append(403)
        if "{" in self.path:
            statuses.append(404)
        if getattr(self.view, "action", None) in getattr(self.view, "throttled_actions", ()):
            statuses.append(429)
        if self.view.get_authenticators() or getattr(self.view, "queryset", None) is not None:
            statuses.append(503)
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            code = str(status)
            error = self._get_response_for_code(ERRORS[status], code, direction=direction)  # type: ignore[no-untyped-call]
            responses.setdefault(code, error)
        return responses


# A saved configuration's slug leads to its other operations (OpenAPI links: clients and stateful fuzzing follow
# them from the 201 of a save to reading, renaming and deleting what was saved).
SAVED_LINKS = {
    "ReadSaved": "v1_configurations_retrieve",
    "RenameSaved": "v1_configurations_partial_update",
    "DeleteSaved": "v1_configurations_destroy",
}


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the links from a save to the operations on its slug."""
    created = result["paths"]["/api/v1/configurations/"]["post"]["responses"]["201"]
    created["links"] = {
        name: {"operationId": operation_id, "parameters": {"slug": "$response.body#/slug"}}
        for name, operation_id in SAVED_LINKS.items()
    }
    return result
