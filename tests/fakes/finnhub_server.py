"""A local Finnhub trade websocket: `GET /?token=KEY` upgraded to a websocket.

Speaks the real protocol: a 401 handshake for a bad token, subscribe /
unsubscribe frames from the client, `{"type":"trade","data":[...]}` and
`{"type":"ping"}` frames from the server. It can fall silent the way free
sockets do (no frames, no pongs, no close) and refuse new connections while
"down", then come back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class FakeFinnhub:
    token: str = "test-token"
    subscriptions: list[str] = field(default_factory=list)
    connections: int = 0
    rejected: int = 0
    silent: bool = False  # open sockets say nothing and answer no pings
    down: bool = False  # new handshakes fail with 503
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    junk_received: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != self.token:
            self.rejected += 1
            return web.Response(status=401, text="Invalid API key")
        if self.down:
            self.rejected += 1
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.connections += 1
        self.sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING:
                    if not self.silent:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    self._on_client_frame(msg.data)
        finally:
            self.sockets.discard(ws)
        return ws

    def _on_client_frame(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.junk_received += 1
            return
        if frame.get("type") == "subscribe":
            self.subscriptions.append(frame["symbol"])
        elif frame.get("type") == "unsubscribe" and frame["symbol"] in self.subscriptions:
            self.subscriptions.remove(frame["symbol"])

    async def _broadcast(self, frame: str) -> int:
        if self.silent:
            return 0
        sent = 0
        for ws in list(self.sockets):
            if not ws.closed:
                await ws.send_str(frame)
                sent += 1
        return sent

    async def send_trades(self, trades: Sequence[dict[str, Any]]) -> int:
        """One frame carrying `trades`; returns the number of sockets it went to."""
        return await self._broadcast(json.dumps({"type": "trade", "data": list(trades)}))

    async def send_ping(self) -> int:
        return await self._broadcast(json.dumps({"type": "ping"}))

    async def send_raw(self, text: str) -> int:
        return await self._broadcast(text)

    def go_silent(self) -> None:
        """The free-tier failure: the socket stays open and says nothing; no new ones."""
        self.silent = True
        self.down = True

    def come_back(self) -> None:
        self.silent = False
        self.down = False

    async def wait_for_subscription(
        self, symbol: str, count: int = 1, timeout: float = 3.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while self.subscriptions.count(symbol) < count:
                await asyncio.sleep(0.01)


def trade(symbol: str, price: float, at_ms: int, volume: float = 100.0) -> dict[str, Any]:
    """One trade as Finnhub sends it."""
    return {"s": symbol, "p": price, "t": at_ms, "v": volume, "c": ["1", "12"]}
