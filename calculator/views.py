"""Web pages (the calculator page is built in calculator/web/)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from calculator.models import SavedConfiguration


def calculator(request: HttpRequest) -> HttpResponse:
    return render(request, "calculator/index.html", {})


def permalink(request: HttpRequest, slug: str) -> HttpResponse:
    configuration = get_object_or_404(SavedConfiguration, slug=slug)
    return render(request, "calculator/permalink.html", {"configuration": configuration})
