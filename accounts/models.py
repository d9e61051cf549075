"""Personal API tokens: django-rest-knox's token (a SHA-512 digest at rest, the token itself shown once)
with a name, so a user can tell "CI launcher" from "laptop" when revoking one."""

from __future__ import annotations

from django.db import models
from knox.models import AbstractAuthToken


class ApiToken(AbstractAuthToken):  # type: ignore[misc]  # knox ships no types
    name = models.CharField(max_length=80, help_text="What the token is for, e.g. “CI launcher”.")

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"
