"""Rate limits shared by the faces: the API's and the page's anonymous saves count against one limit.

A neutral module, so neither face imports the other for it.
"""

from __future__ import annotations

from rest_framework.throttling import AnonRateThrottle


class AnonSaveThrottle(AnonRateThrottle):
    """Anonymous saves per client address (``DEFAULT_THROTTLE_RATES["anon_save"]``), in the default cache."""

    scope = "anon_save"
