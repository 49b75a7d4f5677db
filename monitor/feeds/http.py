"""Fetching feed bodies over HTTP, defensively.

`make_session` builds the one aiohttp session used for feeds: a filtering
resolver (the SSRF guard), connect / read / total timeouts and a browser-like
User-Agent. `Fetcher.fetch` does one conditional GET: it follows redirects by
hand (at most `max_redirects`, http/https only, every hop checked), holds
global and per-host concurrency limits, stops reading at `max_body_bytes` of
decompressed body, and turns every failure into a `FetchError` whose text is
safe to show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp

from monitor.config import FetchConfig
from monitor.core.errors import BlockedAddressError, FetchError
from monitor.core.redact import redact
from monitor.feeds.ssrf import FilteringResolver, check_url
from monitor.logs import get_logger

log = get_logger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class HttpStatusError(FetchError):
    """The server answered with an error status. `retry_after` is its raw header, if any."""

    def __init__(self, message: str, *, status: int, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A 200 (with its body) or a 304 (without one). Header names are lower-case."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def make_timeout(config: FetchConfig) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=config.total_timeout,
        connect=config.connect_timeout,
        sock_connect=config.connect_timeout,
        sock_read=config.read_timeout,
    )


def make_session(config: FetchConfig) -> aiohttp.ClientSession:
    """The session for feed fetching; call inside a running event loop, close when done."""
    connector = aiohttp.TCPConnector(
        resolver=FilteringResolver(allow_private=config.allow_private_networks),
        # The Fetcher's semaphores are the real limits; these only bound the pool.
        limit=max(100, config.concurrency * 2),
        limit_per_host=0,
        ttl_dns_cache=300,
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=make_timeout(config),
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT},
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    )


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


class Fetcher:
    """Conditional GETs with limits. One per session; safe to share between tasks."""

    def __init__(self, session: aiohttp.ClientSession, config: FetchConfig) -> None:
        self._session = session
        self._config = config
        self._global = asyncio.Semaphore(config.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        key = _host_key(url)
        sem = self._per_host.get(key)
        if sem is None:
            sem = self._per_host[key] = asyncio.Semaphore(self._config.per_host_concurrency)
        return sem

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET `url`; FetchResult for 200 / 304, FetchError (or a subclass) for anything else."""
        cfg = self._config
        async with self._global:
            started = time.monotonic()
            try:
                async with asyncio.timeout(cfg.total_timeout):
                    result = await self._follow(url, etag, last_modified)
            except TimeoutError as e:
                waited = time.monotonic() - started
                raise FetchError(f"timed out after {waited:.1f}s") from e
            except FetchError:
                raise
            except aiohttp.ClientConnectorError as e:
                if isinstance(e.os_error, BlockedAddressError):
                    raise BlockedAddressError(str(e.os_error)) from e
                raise FetchError(redact(f"cannot connect: {e.os_error or e}")) from e
            except (aiohttp.ClientError, OSError, ValueError) as e:
                raise FetchError(redact(f"{type(e).__name__}: {e}")) from e
            return FetchResult(
                result.url, result.status, result.headers, result.body, time.monotonic() - started
            )

    async def _follow(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        cfg = self._config
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _hop in range(cfg.max_redirects + 1):
            check_url(current, cfg.allow_private_networks)
            async with (
                self._host_limit(current),
                self._session.get(current, headers=headers, allow_redirects=False) as resp,
            ):
                if resp.status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise FetchError(f"HTTP {resp.status} without a Location header")
                    current = urljoin(current, location)
                    continue
                lowered = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status == 304:
                    return FetchResult(current, 304, lowered)
                if resp.status >= 400 or resp.status < 200:
                    raise HttpStatusError(
                        f"HTTP {resp.status} {resp.reason or ''}".strip(),
                        status=resp.status,
                        retry_after=resp.headers.get("Retry-After"),
                    )
                body = await self._read_capped(resp)
                return FetchResult(current, resp.status, lowered, body)
        raise FetchError(f"more than {cfg.max_redirects} redirects")

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self._config.max_body_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise FetchError(f"body of {resp.content_length} bytes exceeds the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        # The stream yields decompressed bytes, so the cap holds against gzip bombs.
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise FetchError(f"body exceeds the {cap}-byte cap (decompressed)")
            chunks.append(chunk)
        return b"".join(chunks)
