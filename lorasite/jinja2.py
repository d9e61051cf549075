"""The Jinja2 environment for the one template rendered on every recompute (the results panel).

Django's own templates render the rest of the site; the results panel is re-rendered for every new
configuration (the htmx fragment and the page), and the Django template language spent about half of that
request's CPU on it (~1,000 variables per render). Jinja2 compiles the template to Python once, through
Django's own Jinja2 backend, with Django's ``url`` reversing and autoescaping on."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from jinja2 import ChainableUndefined, Environment


def url(name: str) -> str:
    """``{% url name %}`` of the Django template language."""
    return reverse(name)


class DictFirstEnvironment(Environment):
    """``a.b`` reads the key ``b`` of a dict before its attribute, as the Django template language does (and the
    panel's context is nested dicts): Jinja's own order tries the attribute first and pays an AttributeError
    on every one of the panel's ~1,000 lookups."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def environment(**options: Any) -> Environment:
    """As the Django template language renders: a missing value is empty (also one inside a missing one),
    and the template's last newline is kept."""
    options.update(undefined=ChainableUndefined, keep_trailing_newline=True)
    env = DictFirstEnvironment(**options)
    env.globals["url"] = url
    return env
