"""The fetcher against local servers: limits, timeouts, bombs, redirects and the SSRF guard."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.config import FetchConfig
from monitor.core.errors import BlockedAddressError, FetchError
from monitor.feeds.http import Fetcher, HttpStatusError, make_session, make_timeout
from monitor.feeds.ssrf import FilteringResolver, check_url
from tests.fakes.feed_server import (
    FeedServer,
    gzip_bomb,
    huge_body,
    never_answers,
    redirect,
    status,
    trickle,
)

RSS = b'<rss version="2.0"><channel><title>t</title></channel></rss>'


def fetch_config(**kw: object) -> FetchConfig:
    base: dict[str, object] = {
        "allow_private_networks": True,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "total_timeout": 2.0,
    }
    base.update(kw)
    return FetchConfig.model_validate(base)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


async def fetch(url: str, cfg: FetchConfig | None = None, **kw: str) -> object:
    cfg = cfg or fetch_config()
    async with make_session(cfg) as session:
        return await Fetcher(session, cfg).fetch(url, **kw)


async def test_sends_user_agent_and_validators(server: FeedServer) -> None:
    server.add("/f.xml", RSS, etag='"v1"', last_modified="Thu, 30 Jan 2025 09:00:00 GMT")
    cfg = fetch_config(user_agent="Mozilla/5.0 test-agent")
    async with make_session(cfg) as session:
        fetcher = Fetcher(session, cfg)
        first = await fetcher.fetch(server.url("/f.xml"))
        assert first.status == 200 and first.body == RSS
        assert first.headers["etag"] == '"v1"'
        again = await fetcher.fetch(server.url("/f.xml"), etag='"v1"', last_modified="x")
        assert again.not_modified and again.body == b""
    sent = server.requests["/f.xml"]
    assert sent[0]["User-Agent"] == "Mozilla/5.0 test-agent"
    assert "If-None-Match" not in sent[0]
    assert sent[1]["If-None-Match"] == '"v1"' and sent[1]["If-Modified-Since"] == "x"


async def test_429_carries_retry_after(server: FeedServer) -> None:
    server.handle("/f.xml", status(429, {"Retry-After": "120"}))
    with pytest.raises(HttpStatusError) as e:
        await fetch(server.url("/f.xml"))
    assert e.value.status == 429 and e.value.retry_after == "120"


async def test_gzip_bomb_stops_at_the_cap(server: FeedServer) -> None:
    server.handle("/bomb.xml", gzip_bomb(512))
    started = time.monotonic()
    with pytest.raises(FetchError, match="cap"):
        await fetch(server.url("/bomb.xml"), fetch_config(total_timeout=10.0))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("declare_length", [False, True])
async def test_50_megabyte_body_stops_at_the_cap(server: FeedServer, declare_length: bool) -> None:
    server.handle("/big.xml", huge_body(50_000_000, declare_length))
    with pytest.raises(FetchError, match="cap"):
        await fetch(server.url("/big.xml"), fetch_config(total_timeout=10.0))


@pytest.mark.parametrize("handler", [trickle(0.5), never_answers], ids=["trickle", "silent"])
async def test_slow_servers_fail_within_the_total_timeout(
    server: FeedServer, handler: object
) -> None:
    server.handle("/slow.xml", handler)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        await fetch(server.url("/slow.xml"), fetch_config(total_timeout=1.5, read_timeout=1.0))
    assert time.monotonic() - started < 3.0


async def test_redirects_are_followed_and_limited(server: FeedServer) -> None:
    server.add("/final.xml", RSS)
    server.handle("/r1", redirect("/r2"))
    server.handle("/r2", redirect(server.url("/final.xml"), 301))
    result = await fetch(server.url("/r1"))
    assert result.status == 200 and result.url == server.url("/final.xml")  # type: ignore[attr-defined]
    server.handle("/loop", redirect("/loop"))
    with pytest.raises(FetchError, match="redirects"):
        await fetch(server.url("/loop"), fetch_config(max_redirects=5))
    assert server.hits("/loop") == 6
    server.handle("/ftp", redirect("ftp://127.0.0.1/feed"))
    with pytest.raises(FetchError, match="scheme"):
        await fetch(server.url("/ftp"))


class MapResolver(AbstractResolver):
    """Resolves made-up names to loopback addresses; nothing leaves the machine."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip = self.names[host]
        return [
            {"hostname": host, "host": ip, "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
        ]  # fmt: skip

    async def close(self) -> None:
        pass


class PretendPublic(FilteringResolver):
    """The guard, except that `public.test` counts as a public host (it is our server)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == "public.test":
            return await self._inner.resolve(host, port, family)
        return await super().resolve(host, port, family)


async def guarded_fetch(url: str) -> object:
    cfg = fetch_config(allow_private_networks=False)
    resolver = PretendPublic(
        allow_private=False,
        inner=MapResolver({"public.test": "127.0.0.1", "internal.test": "127.0.0.2"}),
    )
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector, timeout=make_timeout(cfg)) as session:
        return await Fetcher(session, cfg).fetch(url)


async def test_redirect_to_127_0_0_2_is_refused(server: FeedServer) -> None:
    server.add("/ok.xml", RSS)
    base = f"http://public.test:{server.port}"
    assert (await guarded_fetch(f"{base}/ok.xml")).status == 200  # type: ignore[attr-defined]
    server.handle("/to-literal", redirect(f"http://127.0.0.2:{server.port}/ok.xml"))
    with pytest.raises(BlockedAddressError):
        await guarded_fetch(f"{base}/to-literal")
    server.handle("/to-name", redirect(f"http://internal.test:{server.port}/ok.xml"))
    with pytest.raises(BlockedAddressError):
        await guarded_fetch(f"{base}/to-name")
    server.handle("/to-mapped", redirect(f"http://[::ffff:127.0.0.2]:{server.port}/ok.xml"))
    with pytest.raises(BlockedAddressError):
        await guarded_fetch(f"{base}/to-mapped")
    assert server.hits("/ok.xml") == 1


async def test_default_session_refuses_loopback_names_and_literals(server: FeedServer) -> None:
    server.add("/ok.xml", RSS)
    cfg = fetch_config(allow_private_networks=False)
    for url in (server.url("/ok.xml"), f"http://localhost:{server.port}/ok.xml"):
        with pytest.raises(BlockedAddressError):
            await fetch(url, cfg)
    assert server.hits("/ok.xml") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://224.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_check_url_refuses_private_literals(url: str) -> None:
    with pytest.raises(BlockedAddressError):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://x/", "ftp://a/b", "http:///nohost"]
)
def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(FetchError):
        check_url(url, allow_private=True)


async def test_global_and_per_host_concurrency_limits(server: FeedServer) -> None:
    import asyncio

    from aiohttp import web

    in_flight = {"now": 0, "max": 0}

    async def slow(request: web.Request) -> web.StreamResponse:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.05)
        in_flight["now"] -= 1
        return web.Response(body=RSS)

    for i in range(12):
        server.handle(f"/c{i}.xml", slow)
    for per_host, total, expected in ((2, 16, 2), (16, 3, 3)):
        in_flight["max"] = 0
        cfg = fetch_config(per_host_concurrency=per_host, concurrency=total)
        async with make_session(cfg) as session:
            fetcher = Fetcher(session, cfg)
            await asyncio.gather(*(fetcher.fetch(server.url(f"/c{i}.xml")) for i in range(12)))
        assert in_flight["max"] == expected
