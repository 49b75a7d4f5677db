"""Serves the bundled sample feeds on 127.0.0.1 for `monitor demo`.

Feeds answer conditional GETs (ETag) like a well-behaved publisher. A feed can
be held back until `release(name)` is called, to show a story arriving on a
later poll.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web


class DemoFeedServer:
    """An aiohttp app serving `/feeds/<name>.xml` from the package's demo data."""

    def __init__(self, held_back: set[str] | None = None) -> None:
        self._held = set(held_back or ())
        self._bodies: dict[str, bytes] = {}
        root = resources.files("monitor.demo") / "feeds"
        for entry in root.iterdir():
            if entry.name.endswith(".xml"):
                self._bodies[entry.name[:-4]] = entry.read_bytes()
        self.requests = 0

    @property
    def names(self) -> list[str]:
        return sorted(self._bodies)

    def release(self, name: str) -> None:
        self._held.discard(name)

    def _body(self, name: str) -> bytes:
        body = self._bodies[name]
        if name in self._held:
            # The channel as it was before its story appeared: same header, no items.
            head, _, _ = body.partition(b"<item>")
            return head + b"</channel>\n</rss>\n"
        return body

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        name = request.match_info["name"]
        if name not in self._bodies:
            raise web.HTTPNotFound()
        body = self._body(name)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=body,
            headers={"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"},
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feeds/{name}.xml", self.handle)
        return app
