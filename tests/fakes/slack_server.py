"""A local server that speaks Slack's incoming-webhook protocol, for delivery tests.

`POST /services/T.../B.../<secret>` with a JSON body; answers `200 ok` as
text, plain-text error bodies (`400 invalid_payload`, `404 channel_not_found`,
`410 channel_is_archived` ...) and `429` with `Retry-After` seconds when told to.
It checks Block Kit limits Slack checks: <= 50 blocks, header <= 150, section
text <= 3000, and that a `text` fallback is present.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord_server import Received
from tests.fakes.loopback import serve


@dataclass
class _Scripted:
    status: int
    text: str
    headers: dict[str, str]


def _block_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    blocks = body.get("blocks", [])
    if not isinstance(body.get("text"), str) or not body["text"]:
        problems.append("text")
    if len(blocks) > 50:
        problems.append("blocks")
    for b in blocks:
        text = b.get("text", {}).get("text", "") if isinstance(b.get("text"), dict) else ""
        if b.get("type") == "header" and (len(text) > 150 or b["text"]["type"] != "plain_text"):
            problems.append("header")
        if b.get("type") == "section" and len(text) > 3000:
            problems.append("section")
        if b.get("type") == "context" and not 1 <= len(b.get("elements", [])) <= 10:
            problems.append("context")
    return problems


class FakeSlack:
    """`async with FakeSlack() as s:` then post to `s.url`; inspect `s.received`."""

    def __init__(self, path: str = "/services/T0001/B0002/slackSecretToken0123456789") -> None:
        self.path = path
        self.received: list[Received] = []
        self._script: deque[_Scripted] = deque()
        self.gone_with: str | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        self._script.extend(
            _Scripted(429, "rate_limited", {"Retry-After": str(retry_after)}) for _ in range(n)
        )

    def fail_next(self, n: int, status: int = 500, text: str = "internal_error") -> None:
        self._script.extend(_Scripted(status, text, {}) for _ in range(n))

    def archive_channel(self) -> None:
        self.gone_with = "channel_is_archived"

    def delivered(self) -> list[dict[str, Any]]:
        return [r.body for r in self.received if r.status == 200]

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/services/{team}/{bot}/{secret}", self._post)
        self._runner, self.port = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _answer(
        self, rec: Received, status: int, text: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        rec.status = status
        return web.Response(status=status, text=text, content_type="text/html", headers=headers)

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        rec = Received(
            "POST", request.path, dict(request.query), dict(request.headers), body, time.monotonic()
        )
        self.received.append(rec)
        if request.path != self.path:
            return self._answer(rec, 403, "invalid_token")
        if self.gone_with is not None:
            return self._answer(rec, 410 if "archived" in self.gone_with else 404, self.gone_with)
        if self._script:
            s = self._script.popleft()
            return self._answer(rec, s.status, s.text, s.headers)
        if not isinstance(body, dict) or not request.content_type.startswith("application/json"):
            return self._answer(rec, 400, "invalid_payload")
        if _block_problems(body):
            return self._answer(rec, 400, "invalid_blocks")
        return self._answer(rec, 200, "ok")
