"""Who is asking: the client's address, taking ``X-Forwarded-For`` only from proxies we run.

Rate limits and login lockouts count per client address. A forwarded-for header is whatever the
client chose to send unless a proxy of ours wrote it, so it is read only when the connection comes
from a configured proxy (``TRUSTED_PROXIES``), and then walked from the right: each proxy appends
the address it saw, so the first address that is not one of ours is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:  # settings.py imports this module: keep its imports light
    from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` -> networks; raises ValueError naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {value!r} is not an IP address or network") from None
    return tuple(networks)


@lru_cache(maxsize=4096)
def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The address rate limits and lockouts count against (``REMOTE_ADDR`` unless a trusted proxy
    forwarded the request)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    networks: tuple[Network, ...] = settings.TRUSTED_PROXIES
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
    seen = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return seen  # a proxy of ours writes addresses: anything else came from the client
        if not _is_trusted(hop, networks):
            return hop
        seen = hop
    return seen
