"""Django's PostgreSQL backend, except that the client never waits for the server longer than
``DATABASE_TIMEOUT`` seconds.

``connect_timeout`` bounds connecting and the server's ``statement_timeout`` bounds a slow statement,
but a server that stops answering (hung, SIGSTOPped, a network partition that still ACKs) cancels
nothing, and the kernel keeps acknowledging our packets, so TCP keepalives never fire either. psycopg 3
routes every wait for the server (queries, commits, rollbacks, Django's health check) through
``Connection.wait``, which takes a timeout: this backend's connections pass ``DATABASE_TIMEOUT`` there.
On expiry the connection is closed (its protocol state is unknown) and an ``OperationalError`` raised,
which Django turns into its own ``OperationalError`` and the site into a 503.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import errors


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``deadline_seconds``."""

    deadline_seconds: float = 5.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval=interval, timeout=self.deadline_seconds if timeout is None else timeout)
        except errors._WaitTimeout:
            self.close()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.deadline_seconds:g} s (connection closed)"
            ) from None


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if type(connection) is psycopg.Connection and settings.DATABASE_TIMEOUT > 0:  # (not the pool's)
            connection.__class__ = DeadlineConnection  # only `wait` differs: same layout, same state
            connection.deadline_seconds = settings.DATABASE_TIMEOUT  # type: ignore[attr-defined]
        return connection
