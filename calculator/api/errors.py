"""Every input problem becomes a 400 in DRF's shape ``{"field": ["message"]}``, nested for nested fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from calculator.schemas import nest, pydantic_errors
from calculator.services import InputError
from lorasite.middleware import RETRY_AFTER_SECONDS


def as_drf_error(error: Exception) -> exceptions.ValidationError:
    if isinstance(error, PydanticValidationError):
        return exceptions.ValidationError(nest(pydantic_errors(error)))
    if isinstance(error, InputError):
        return exceptions.ValidationError(nest(error.errors))
    raise TypeError(error)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (PydanticValidationError, InputError)):
        exc = as_drf_error(exc)
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 503:  # as the middleware's 503s (the schema says so)
        response["Retry-After"] = RETRY_AFTER_SECONDS
    return response
