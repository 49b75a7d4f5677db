"""The operator's HTTP surface: `/healthz`, `/readyz` and `/metrics`.

Bound to 127.0.0.1 by default. `/healthz` says the process is alive and its
loop answers; `/readyz` runs the readiness checks the daemon registers (store
reachable, rules loaded, price source fresh, destinations working) and answers
503 naming every failing check; `/metrics` is the Prometheus text format.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from monitor.app.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str = ""


ReadinessProbe = Callable[[], Awaitable[dict[str, Check]]]


def build_app(metrics: Metrics, readiness: ReadinessProbe) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = await readiness()
        ok = all(c.ok for c in checks.values())
        body = {
            "status": "ready" if ok else "not ready",
            "checks": {k: {"ok": c.ok, "detail": c.detail} for k, c in checks.items()},
        }
        return web.Response(
            status=200 if ok else 503,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(
            text=metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app


class HealthServer:
    """Runs the health app on host:port; port 0 picks a free one (see `port`)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        await self._runner.cleanup()
