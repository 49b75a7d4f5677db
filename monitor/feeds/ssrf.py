"""The SSRF guard: which addresses a feed URL (or a redirect) may reach.

Refused unless `fetch.allow_private_networks` is on: loopback, private,
link-local, CGNAT (100.64/10), multicast, unspecified and reserved addresses,
IPv4 and IPv6 alike, with IPv4-mapped / 6to4-embedded IPv6 unwrapped first.
The check runs after DNS resolution (a filtering aiohttp resolver) because a
public name may resolve to 127.0.0.1, and on IP literals in URLs, which aiohttp
connects to without asking the resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from monitor.core.errors import BlockedAddressError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible or 6to4 IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        packed = ip.packed
        if packed[:12] == bytes(12) and packed[12:] not in (bytes(4), b"\x00\x00\x00\x01"):
            return ipaddress.IPv4Address(packed[12:])  # deprecated IPv4-compatible form
    return ip


def is_public(ip: IPAddress) -> bool:
    """True when `ip` is a globally routable unicast address."""
    ip = unwrap(ip)
    if ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return False
    if ip.is_private or ip.is_reserved:
        return False
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global


def parse_ip(host: str) -> IPAddress | None:
    """The address if `host` is an IP literal (brackets and zone ids allowed), else None."""
    h = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        return None


def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-http(s) URLs, and IP-literal hosts that are not public.

    Raises FetchError for a bad scheme or missing host, BlockedAddressError for
    a refused literal. Names are checked later, after resolution.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as e:
        raise FetchError(f"invalid URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused URL scheme {parts.scheme or '(none)'!r}: only http and https")
    if not host:
        raise FetchError("URL has no host")
    ip = parse_ip(host)
    if ip is not None and not allow_private and not is_public(ip):
        raise BlockedAddressError(f"refused address {ip}: not a public address")
    # Integer and dotted-octal hosts (http://2130706433/) resolve to literals too;
    # the resolver sees those, since they are not valid literals for aiohttp.


class FilteringResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops non-public addresses."""

    def __init__(self, allow_private: bool = False, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        kept: list[ResolveResult] = []
        refused: list[str] = []
        for r in results:
            ip = parse_ip(str(r["host"]))
            if ip is not None and is_public(ip):
                kept.append(r)
            else:
                refused.append(str(r["host"]))
        if not kept:
            raise BlockedAddressError(
                f"refused address {', '.join(refused) or '(none)'} for {host}: not public"
            )
        return kept

    async def close(self) -> None:
        await self._inner.close()
