"""A local server that speaks Discord's webhook protocol, for delivery tests.

Serves `POST /api/[v10/]webhooks/{id}/{token}` and `PATCH .../messages/{id}` on
127.0.0.1. It checks what Discord checks (token, JSON body, the embed limits:
an oversized message gets 400 / 50035), answers like Discord (a message object
with `?wait=true`, 204 without), enforces ~5 requests per 2 s per webhook with a
real-looking 429, and can be told to answer the next requests with 429 (with
`Via`, body `retry_after` and `Retry-After` header), 5xx or 404 / 10015.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve

LIMITS = {
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "total": 6000,
    "embeds": 10,
    "content": 2000,
}


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival
    status: int = 0  # what the server answered
    files: dict[str, bytes] = field(default_factory=dict)  # uploads by file name


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _embed_problems(embeds: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if len(embeds) > LIMITS["embeds"]:
        problems.append("embeds")
    total = 0
    for e in embeds:
        title, desc = e.get("title", ""), e.get("description", "")
        footer = e.get("footer", {}).get("text", "")
        fields = e.get("fields", [])
        if len(title) > LIMITS["title"]:
            problems.append("title")
        if len(desc) > LIMITS["description"]:
            problems.append("description")
        if len(footer) > LIMITS["footer"]:
            problems.append("footer")
        if len(fields) > LIMITS["fields"]:
            problems.append("fields")
        for f in fields:
            if len(f.get("name", "")) > LIMITS["field_name"] or not f.get("name"):
                problems.append("field name")
            if len(f.get("value", "")) > LIMITS["field_value"] or not f.get("value"):
                problems.append("field value")
        total += len(title) + len(desc) + len(footer)
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in fields)
    if total > LIMITS["total"]:
        problems.append("total")
    return problems


class FakeDiscord:
    """`async with FakeDiscord() as d:` then post to `d.url`; inspect `d.received`."""

    def __init__(
        self,
        webhook_id: int = 1234567890,
        token: str = "fake-token-AbCdEf0123456789",
        rate: tuple[int, float] | None = (5, 2.0),
        delay_s: float = 0.0,
    ) -> None:
        self.delay_s = delay_s  # how long each accepted post takes to answer
        self.webhook_id = webhook_id
        self.token = token
        self.rate = rate
        self.received: list[Received] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.gone = False
        self._script: deque[Scripted] = deque()
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._recent: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/{self.webhook_id}/{self.token}"

    # ---------------------------------------------------------------- scripting

    def rate_limit_next(self, n: int, retry_after: float = 1.5, via: bool = True) -> None:
        """Answer the next `n` posts with 429 as Discord does."""
        headers = {
            "Retry-After": str(max(1, round(retry_after + 0.49))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
            "X-RateLimit-Scope": "shared",
        }
        if via:
            headers["Via"] = "1.1 google"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
        }
        self._script.extend(Scripted(429, body, headers) for _ in range(n))

    def fail_next(self, n: int, status: int = 502) -> None:
        self._script.extend(
            Scripted(status, {"message": "Bad Gateway", "code": 0}) for _ in range(n)
        )

    def reject_next(self, code: int = 50035, message: str = "Invalid Form Body") -> None:
        """Answer the next request with 400 and a Discord error code."""
        self._script.append(Scripted(400, {"message": message, "code": code}))

    def delete_webhook(self) -> None:
        """From now on every request gets 404 / 10015 Unknown Webhook."""
        self.gone = True

    # ---------------------------------------------------------------- views

    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of the posts that were accepted."""
        return [r.body for r in self.posts() if 200 <= r.status < 300]

    def titles(self) -> list[str]:
        return [e.get("title", "") for b in self.delivered() for e in b.get("embeds", [])]

    # ---------------------------------------------------------------- server

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        for prefix in ("/api", "/api/v10", "/api/v9"):
            app.router.add_post(prefix + "/webhooks/{wid}/{token}", self._execute)
            app.router.add_patch(prefix + "/webhooks/{wid}/{token}/messages/{mid}", self._edit)
        self._runner, self.port = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _answer(
        self, rec: Received, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        rec.status = status
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/json", headers=headers
        )

    async def _record(self, request: web.Request) -> tuple[Received, web.Response | None]:
        files: dict[str, bytes] = {}
        body: Any
        if request.content_type == "multipart/form-data":
            # Discord's file upload: the JSON body in `payload_json`, files as `files[n]`.
            form = await request.post()
            payload = form.get("payload_json")
            body = json.loads(payload) if isinstance(payload, str) else None
            for value in form.values():
                if isinstance(value, web.FileField):
                    files[value.filename] = value.file.read()
        else:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        rec = Received(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
            time.monotonic(),
            files=files,
        )
        self.received.append(rec)
        wid, token = request.match_info["wid"], request.match_info["token"]
        if self.gone or wid != str(self.webhook_id) or token != self.token:
            return rec, self._answer(rec, 404, {"message": "Unknown Webhook", "code": 10015})
        if self._script:
            s = self._script.popleft()
            return rec, self._answer(rec, s.status, s.body, s.headers)
        if self.rate is not None:
            limit, per = self.rate
            while self._recent and rec.at - self._recent[0] >= per:
                self._recent.popleft()
            if len(self._recent) >= limit:
                wait = round(per - (rec.at - self._recent[0]), 3)
                return rec, self._answer(
                    rec,
                    429,
                    {
                        "message": "You are being rate limited.",
                        "retry_after": wait,
                        "global": False,
                    },
                    {
                        "Retry-After": str(max(1, round(wait + 0.49))),
                        "Via": "1.1 google",
                        "X-RateLimit-Remaining": "0",
                    },
                )
            self._recent.append(rec.at)
        json_like = request.content_type in ("application/json", "multipart/form-data")
        if not isinstance(body, dict) or not json_like:
            return rec, self._answer(
                rec, 400, {"message": "Cannot send an empty message", "code": 50006}
            )
        problems = _embed_problems(body.get("embeds", []))
        if len(body.get("content") or "") > LIMITS["content"]:
            problems.append("content")
        if problems:
            return rec, self._answer(
                rec, 400, {"message": "Invalid Form Body", "code": 50035, "errors": problems}
            )
        return rec, None

    def _message(self, mid: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": mid,
            "type": 0,
            "content": body.get("content") or "",
            "channel_id": "555000000000000001",
            "webhook_id": str(self.webhook_id),
            "author": {
                "id": str(self.webhook_id),
                "username": "semis",
                "avatar": None,
                "discriminator": "0000",
                "bot": True,
            },
            "attachments": [],
            "embeds": body.get("embeds", []),
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": "2025-01-27T14:30:00.000000+00:00",
            "edited_timestamp": None,
            "flags": 0,
            "components": [],
        }

    async def _execute(self, request: web.Request) -> web.Response:
        rec, early = await self._record(request)
        if early is not None:
            return early
        await asyncio.sleep(self.delay_s)
        mid = str(next(self._ids))
        self.messages[mid] = rec.body
        headers = self._bucket_headers(rec.at)
        if request.query.get("wait") in ("true", "1", "True"):
            return self._answer(rec, 200, self._message(mid, rec.body), headers)
        return self._answer(rec, 204, None, headers)

    def _bucket_headers(self, now: float) -> dict[str, str]:
        """X-RateLimit-* as Discord sends them on every answer."""
        if self.rate is None:
            return {}
        limit, per = self.rate
        reset_after = per - (now - self._recent[0]) if self._recent else per
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - len(self._recent))),
            "X-RateLimit-Reset-After": f"{max(0.0, reset_after):.3f}",
            "X-RateLimit-Bucket": "fakebucket",
        }

    async def _edit(self, request: web.Request) -> web.Response:
        rec, early = await self._record(request)
        if early is not None:
            return early
        mid = request.match_info["mid"]
        if mid not in self.messages:
            return self._answer(rec, 404, {"message": "Unknown Message", "code": 10008})
        self.messages[mid] = rec.body
        return self._answer(rec, 200, self._message(mid, rec.body))
