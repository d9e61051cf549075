"""The REST API: thin views that validate with `calculator.schemas` and call `calculator.services`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TypeVar

from django.db import DatabaseError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from pydantic import ValidationError as PydanticValidationError
from rest_framework import mixins, permissions, viewsets
from rest_framework.exceptions import APIException, NotAuthenticated, NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from calculator import services
from calculator.api.errors import as_drf_error
from calculator.api.openapi import (
    ConfigurationResponse,
    ConfigurationSummary,
    EstimateResponse,
    PlanResponse,
    PresetOut,
)
from calculator.api.representation import estimate_dict, goal_dict, preset_dict
from calculator.api.serializers import ConfigurationSerializer, ConfigurationUpdateSerializer
from calculator.models import SavedConfiguration
from calculator.schemas import PRESET_SLUG, EstimateRequest, PlanRequest, SaveRequest
from calculator.throttling import AnonSaveThrottle

# "Try it out" in the API docs starts from these bodies, so each must answer 200/201 (a test posts them).
ESTIMATE_EXAMPLE = {
    "model": {"preset": "llama-3.1-8b"},
    "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    "training": {"base_dtype": "nf4", "batch_size": 1, "seq_len": 2048, "gradient_checkpointing": True},
}
SAVE_EXAMPLE = {"name": "Llama 3.1 8B QLoRA r=16", "note": "all linear layers", **ESTIMATE_EXAMPLE}
RENAME_EXAMPLE = {"name": "Renamed configuration", "note": "a new note"}
PLAN_EXAMPLE = {
    "model": {"preset": "llama-3.1-8b"},
    "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    "training": {"base_dtype": "nf4", "gradient_checkpointing": True, "seq_len": 4096, "dataset_tokens": 40_000_000},
    "gpu": "NVIDIA RTX 4090 24 GB",
    "goal": "max_batch_size",
}
EXAMPLES = {
    "estimate": [OpenApiExample("QLoRA on Llama 3.1 8B", value=ESTIMATE_EXAMPLE, request_only=True)],
    "save": [OpenApiExample("Save a configuration", value=SAVE_EXAMPLE, request_only=True)],
    "rename": [OpenApiExample("Rename", value=RENAME_EXAMPLE, request_only=True)],
    "plan": [OpenApiExample("Largest micro-batch on a 24 GB card", value=PLAN_EXAMPLE, request_only=True)],
}

Request_ = TypeVar("Request_", bound=EstimateRequest)


def parse(model: type[Request_], data: Any) -> Request_:
    """Strict, as the schema says: a boolean is true or false, an integer is not a boolean or a float."""
    try:
        return model.model_validate(data, strict=True)
    except PydanticValidationError as error:
        raise as_drf_error(error) from None


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "Saving is unavailable right now (the database cannot be reached); computing still works."
    default_code = "database_unavailable"


class JSONOnly(BaseContentNegotiation):
    """The estimate endpoint only speaks JSON; skipping negotiation keeps the hot path short (whatever the
    ``Accept`` and ``Content-Type`` headers say, the body is read as JSON and the answer is JSON)."""

    negotiates = False  # so the schema documents no 406 or 415 here

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser:
        return next(iter(parsers))

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class EstimateView(APIView):
    """Compute without saving. No authentication and no CSRF token: it changes nothing.

    The body is validated straight from JSON by pydantic and the answer comes back as ready bytes
    (cached per process for identical requests), so the view costs little more than a trivial one.
    """

    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly

    @extend_schema(request=EstimateRequest, responses={200: EstimateResponse}, examples=EXAMPLES["estimate"])
    def post(self, request: Request) -> HttpResponse | Response:
        try:
            body = estimate_body(request.body, services.catalog_version())
        except (PydanticValidationError, services.InputError) as error:
            raise as_drf_error(error) from None
        return HttpResponse(body, content_type="application/json")


@lru_cache(maxsize=1024)
def estimate_body(body: bytes, catalog_version: int) -> bytes:
    """The response body for a request body. Results are pure functions of the inputs and the catalog
    (its version is part of the key), so identical requests are answered from this per-process cache;
    errors raise and are not cached."""
    request = EstimateRequest.model_validate_json(body, strict=True)  # types as the schema says
    planned = services.plan_estimate(request=request)
    filled = request.training.fill().set_by_framework
    data = estimate_dict(planned.estimate, set_by_framework=filled, planned=planned)
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


class PlanView(APIView):
    """Goal seeking: the largest micro-batch, longest sequence, largest rank or fewest GPUs that fit the card
    with the safety margin (solved on the estimate's closed form), and the estimate at that value."""

    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly

    @extend_schema(request=PlanRequest, responses={200: PlanResponse}, examples=EXAMPLES["plan"])
    def post(self, request: Request) -> HttpResponse | Response:
        try:
            body = plan_body(request.body, services.catalog_version())
        except (PydanticValidationError, services.InputError) as error:
            raise as_drf_error(error) from None
        return HttpResponse(body, content_type="application/json")


@lru_cache(maxsize=256)
def plan_body(body: bytes, catalog_version: int) -> bytes:
    request = PlanRequest.model_validate_json(body, strict=True)
    result = services.solve(request=request)
    filled = request.training.fill().set_by_framework
    return json.dumps(goal_dict(result, filled), separators=(",", ":"), allow_nan=False).encode()


class PresetViewSet(viewsets.ViewSet):
    """The published preset catalog, as the calculator reads it (the services' catalog snapshot)."""

    lookup_field = "slug"
    lookup_value_regex = PRESET_SLUG  # slugs have dots ("llama-3.1-8b"); the router's default refuses them
    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: PresetOut})  # a list action: drf-spectacular documents an array of them
    def list(self, request: Request) -> Response:
        return Response([preset_dict(entry) for entry in services.presets()])

    @extend_schema(responses={200: PresetOut})
    def retrieve(self, request: Request, slug: str) -> Response:
        entry = services.find_preset(slug)
        if entry is None:
            raise NotFound(f"No published preset {slug!r}.")
        return Response(preset_dict(entry))


class IsOwner(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        """Renaming and deleting need an account first: a 401 before any lookup, whether the slug exists or not."""
        return view.action not in ("partial_update", "destroy") or request.user.is_authenticated

    def has_object_permission(self, request: Request, view: Any, obj: SavedConfiguration) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return obj.owner_id is not None and obj.owner_id == request.user.id


class ConfigurationViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Saved configurations: anyone saves (rate-limited) and reads by slug; owners list, rename, delete."""

    queryset = SavedConfiguration.objects.select_related("owner")
    lookup_field = "slug"
    serializer_class = ConfigurationUpdateSerializer
    permission_classes = [IsOwner]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    anonymous_actions = ("create", "retrieve")  # anyone saves and reads a permalink (the schema says so too)
    throttled_actions = ("create",)  # for anonymous callers

    def get_throttles(self) -> list[BaseThrottle]:
        if self.action in self.throttled_actions and not self.request.user.is_authenticated:
            return [AnonSaveThrottle()]
        return []

    def get_queryset(self) -> Any:
        if self.action == "list":
            user = self.request.user
            return self.queryset.filter(owner=user) if user.is_authenticated else self.queryset.none()
        return self.queryset

    @extend_schema(responses={200: ConfigurationSummary})  # a list action: an array of them
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.is_authenticated:  # DRF makes it a 401 naming the token scheme (WWW-Authenticate)
            raise NotAuthenticated("Sign in (or send a token) to list your configurations.")
        items = self.get_queryset()[:500]
        context = {"request": request, "with_estimate": False}
        return Response(ConfigurationSerializer(items, many=True, context=context).data)

    @extend_schema(request=SaveRequest, responses={201: ConfigurationResponse}, examples=EXAMPLES["save"])
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        save_request = parse(SaveRequest, request.data)
        owner = request.user if request.user.is_authenticated else None
        try:
            configuration = services.save_configuration(request=save_request, owner=owner)
        except services.InputError as error:
            raise as_drf_error(error) from None
        except DatabaseError:
            raise ServiceUnavailable() from None
        return Response(self._shown(configuration), status=201)

    @extend_schema(responses={200: ConfigurationResponse})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self._shown(self.get_object()))

    def _shown(self, configuration: SavedConfiguration) -> Any:
        return ConfigurationSerializer(configuration, context={"request": self.request}).data

    @extend_schema(
        request=ConfigurationUpdateSerializer,
        responses={200: ConfigurationResponse},
        examples=EXAMPLES["rename"],
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        configuration = self.get_object()
        serializer = ConfigurationUpdateSerializer(configuration, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(self._shown(configuration))
