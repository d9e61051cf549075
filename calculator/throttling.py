"""Rate limits shared by the faces: the API's and the page's anonymous saves count against one limit.

A neutral module, so neither face imports the other for it.

Counts live in the default cache, which is Redis (``CACHE_URL``) in any deployment with more than one
process: every worker of every app server then counts against the same limit. Each count is one
atomic increment (``cache.add`` + ``cache.incr``; Redis ``INCR``), never a read-modify-write that
concurrent requests could both pass. Windows are fixed (a client may burst to twice the rate across
a window boundary, never more). Clients are told apart by `lorasite.clients.client_ip`, which reads
``X-Forwarded-For`` only from configured proxies.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from lorasite.clients import client_ip


def count(key: str, window_seconds: int) -> int:
    """Increment the counter of the current window for ``key`` and return its new value."""
    window = int(time.time() // window_seconds)
    full_key = f"rate:{key}:{window}"
    cache.add(full_key, 0, timeout=window_seconds + 1)
    try:
        return cache.incr(full_key)
    except ValueError:  # expired between add and incr: this is the window's first hit
        cache.add(full_key, 1, timeout=window_seconds + 1)
        return 1


def seconds_left(window_seconds: int) -> float:
    return window_seconds - time.time() % window_seconds


class AnonSaveThrottle(SimpleRateThrottle):
    """Anonymous saves: ``DEFAULT_THROTTLE_RATES["anon_save"]`` per client address, and at most
    ``ANON_SAVE_SITE_RATE`` from all anonymous clients together (many addresses cannot fill the
    database either)."""

    scope = "anon_save"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return f"{self.scope}:{client_ip(request)}"

    def allow_request(self, request: Request, view: Any) -> bool:
        limit, seconds = self.parse_rate(self.rate)
        site_limit, site_seconds = self.parse_rate(settings.ANON_SAVE_SITE_RATE)
        assert limit is not None
        assert seconds is not None
        assert site_limit is not None
        assert site_seconds is not None
        self.window_seconds: int = seconds
        if count(self.get_cache_key(request, view), seconds) > limit:
            return False
        if count(f"{self.scope}:site", site_seconds) > site_limit:
            self.window_seconds = site_seconds
            return False
        return True

    def wait(self) -> float:
        return seconds_left(self.window_seconds)
