"""Every input problem becomes a 400 in DRF's shape ``{"field": ["message"]}``, nested for nested fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from calculator.schemas import nest, pydantic_errors
from calculator.services import InputError


def as_drf_error(error: Exception) -> exceptions.ValidationError:
    if isinstance(error, PydanticValidationError):
        return exceptions.ValidationError(nest(pydantic_errors(error)))
    if isinstance(error, InputError):
        return exceptions.ValidationError(nest(error.errors))
    raise TypeError(error)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (PydanticValidationError, InputError)):
        exc = as_drf_error(exc)
    return drf_exception_handler(exc, context)
