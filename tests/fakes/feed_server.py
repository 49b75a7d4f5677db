"""A local feed server on 127.0.0.1 that speaks HTTP the way real feed hosts do.

Each path serves a body with its own headers; ETag / Last-Modified make it
answer conditional GETs with 304. Custom handlers play hostile or broken hosts
(429 with Retry-After, endless trickles, redirects, bombs). Every request is
recorded so tests can assert what the client sent.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class FeedServer:
    """`async with FeedServer() as s: s.add("/a.xml", body); s.url("/a.xml")`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.routes: dict[str, Route] = {}
        self.handlers: dict[str, Handler] = {}
        self.requests: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._runner: web.AppRunner | None = None

    def add(self, path: str, body: bytes, **kw: object) -> Route:
        route = Route(body=body, **kw)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def handle(self, path: str, handler: Handler) -> None:
        self.handlers[path] = handler

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return len(self.requests[path])

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path].append(dict(request.headers))
        handler = self.handlers.get(request.path)
        if handler is not None:
            return await handler(request)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="not found")
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        if route.status == 200 and (
            (route.etag and inm == route.etag)
            or (not route.etag and route.last_modified and ims == route.last_modified)
        ):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = route.content_type
        return web.Response(status=route.status, body=route.body, headers=headers)

    async def __aenter__(self) -> FeedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# ----------------------------------------------------------------------------- hostile hosts


async def never_answers(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response(text="too late")


def trickle(interval: float = 0.5) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await resp.prepare(request)
        for _ in range(10_000):
            await resp.write(b"<")
            await asyncio.sleep(interval)
        return resp

    return handler


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=f"status {code}", headers=headers or {})

    return handler


def redirect(location: str, code: int = 302) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers={"Location": location})

    return handler


@functools.cache
def gzip_of_zeros(decompressed_mib: int) -> bytes:
    # Level 1 is ten times faster to build than level 9, and still a 200:1 bomb.
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join([packer.compress(block) for _ in range(decompressed_mib)] + [packer.flush()])


def gzip_bomb(decompressed_mib: int = 512) -> Handler:
    """A gzip body of zeros that inflates to `decompressed_mib` MiB."""
    compressed = gzip_of_zeros(decompressed_mib)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=compressed,
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
        )

    return handler


def huge_body(size: int, declare_length: bool = False) -> Handler:
    """`size` bytes of feed-looking text, streamed without (or with) a Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/rss+xml"}
        if declare_length:
            headers["Content-Length"] = str(size)
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        chunk = b"<item><title>x</title></item>" * 2000
        sent = 0
        try:
            while sent < size:
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    return handler
