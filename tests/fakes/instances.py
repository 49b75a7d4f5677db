"""Several `monitor run` processes on one PostgreSQL schema, against a timed feed host.

    async with FeedHost(300) as feeds, FakeDiscord(rate=None) as discord:
        fleet = Fleet(tmp_path, pg_url, feeds, discord, interval=2.0, lease=3.0)
        first, *rest = await fleet.start(3)
        feeds.publish(["f000", "f001"], "Quantum widget makers ...")
        await fleet.wait_for(lambda: discord.delivered(), 10)
        fleet.kill(first)        # SIGKILL: no goodbye, its leases just run out
        await fleet.stop()       # SIGTERM the rest and wait for them

`FeedHost` serves many RSS feeds with ETags and records every request's feed,
start, end and status in wall-clock seconds (the daemons' leases are in wall
time too), so a test can prove that no two requests for one feed overlapped
and that polls kept their interval. A small per-request delay keeps polls in
flight long enough for an overlap, or a kill mid-poll, to be seen. `Fleet`
writes the config file, starts the processes with their logs in files, and
reads the shared schema (`leases`, `outbox`) with plain asyncpg. The
`pg_url` fixture yields a URL with a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import asyncpg
import pytest
from aiohttp import web

from monitor.rulefiles import default_rules_dir
from monitor.store import split_schema
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.stores import PG_URL, drop_schema, postgres_available

# A rule of our own with no cooldown: every distinct story alerts, and no bundled
# rule's cooldown decides what a test sees.
_FEED_POLLED = re.compile(r"\bfeed_polled feed=(\S+)")

WIDGET_RULE = """
[[rule]]
id = "widgets"
title = "Quantum widgets"
description = "Any story about quantum widgets."
severity = "warning"
[rule.when]
any = ["term:quantum widget"]
"""


def widget_title(n: int) -> str:
    """A distinct story per `n`: its precise figure keeps it apart from its neighbours."""
    return f"Quantum widget makers report {n}.{n % 7 + 1}5% rise in orders"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL URL with a schema of its own; skips when the server does not answer."""
    if not await postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        await drop_schema(schema)


# --------------------------------------------------------------------------- feed host


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the feed host saw it; times are `time.time()`."""

    feed: str
    start: float
    end: float
    status: int


class FeedHost:
    """`count` RSS feeds named f000, f001 ... at `/feeds/<name>.xml`, each with `items`
    filler items. Answers conditional GETs with 304; every answer takes `delay_s`
    (or what `slow` says for that feed)."""

    def __init__(
        self,
        count: int,
        *,
        items: int = 3,
        delay_s: float = 0.05,
        slow: dict[str, float] | None = None,
    ) -> None:
        self.names = [f"f{i:03d}" for i in range(count)]
        self.delay_s = delay_s
        self.slow = dict(slow or {})  # feeds that take longer to answer, and how long
        self.requests: list[Request] = []
        self._items: dict[str, list[dict[str, str]]] = {n: [] for n in self.names}
        self._version: dict[str, int] = dict.fromkeys(self.names, 0)
        self._bodies: dict[str, bytes] = {}
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        for name in self.names:
            for i in range(items):
                self._add(name, f"Filler note {i} from {name}", "Nothing to see.", 600 + i)
            self._render(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/feeds/{name}.xml"

    def publish(
        self, feeds: Sequence[str], title: str | Sequence[str], description: str = ""
    ) -> None:
        """Put one story on each of `feeds` (one title for all, or one title per feed)."""
        titles = [title] * len(feeds) if isinstance(title, str) else list(title)
        for name, t in zip(feeds, titles, strict=True):
            self._add(name, t, description, 1)
            self._render(name)

    def polls(self, feed: str) -> list[Request]:
        return sorted((r for r in self.requests if r.feed == feed), key=lambda r: r.start)

    def by_feed(self) -> dict[str, list[Request]]:
        out: dict[str, list[Request]] = {n: [] for n in self.names}
        for r in sorted(self.requests, key=lambda r: r.start):
            out[r.feed].append(r)
        return out

    def _add(self, name: str, title: str, description: str, minutes_ago: float) -> None:
        serial = next(self._serial)
        when = datetime.fromtimestamp(time.time() - minutes_ago * 60, UTC)
        self._items[name].insert(
            0,
            {
                "title": title,
                "link": f"http://127.0.0.1/articles/{name}/{serial}",
                "guid": f"{name}-{serial}",
                "pubDate": format_datetime(when),
                "description": description,
            },
        )

    def _render(self, name: str) -> None:
        self._version[name] += 1
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
            f"<title>Wire {name}</title><link>http://127.0.0.1/</link>",
            "<description>test wire</description>",
        ]
        for it in self._items[name]:
            parts.append(
                f"<item><title>{escape(it['title'])}</title><link>{escape(it['link'])}</link>"
                f'<guid isPermaLink="false">{escape(it["guid"])}</guid>'
                f"<pubDate>{it['pubDate']}</pubDate>"
                f"<description>{escape(it['description'])}</description></item>"
            )
        parts.append("</channel></rss>")
        self._bodies[name] = "".join(parts).encode("utf-8")

    def _etag(self, name: str) -> str:
        return f'"{name}-v{self._version[name]}"'

    async def _serve(self, request: web.Request) -> web.Response:
        start = time.time()
        name = request.match_info["name"]
        if name not in self._bodies:
            return web.Response(status=404, text="not found")
        etag = self._etag(name)  # what the client asked about, before the delay
        body = self._bodies[name]
        await asyncio.sleep(self.slow.get(name, self.delay_s))
        if request.headers.get("If-None-Match") == etag:
            response = web.Response(status=304, headers={"ETag": etag})
        else:
            response = web.Response(
                body=body, headers={"ETag": etag, "Content-Type": "application/rss+xml"}
            )
        self.requests.append(Request(name, start, time.time(), response.status))
        return response

    async def __aenter__(self) -> FeedHost:
        app = web.Application()
        app.router.add_get("/feeds/{name}.xml", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# --------------------------------------------------------------------------- the fleet


@dataclass
class Instance:
    """One `monitor run` process."""

    proc: asyncio.subprocess.Process
    log: Path

    @property
    def instance_id(self) -> str:
        """The daemon's default id (host:pid), which names its leases."""
        return f"{socket.gethostname()}:{self.proc.pid}"


class Fleet:
    """Writes one config for `feeds` and `discord`, and runs `monitor run` processes on it."""

    def __init__(
        self,
        tmp_path: Path,
        store_url: str,
        feeds: FeedHost,
        discord: FakeDiscord,
        *,
        interval: float = 2.0,
        lease: float = 3.0,
        grace: float = 3.0,
    ) -> None:
        self.tmp_path = tmp_path
        self.store_url = store_url
        self.feeds = feeds
        self.discord = discord
        self.interval = interval
        self.lease = lease
        self.grace = grace
        self.instances: list[Instance] = []
        self.rules_dir = tmp_path / "rules"
        if not self.rules_dir.exists():
            shutil.copytree(default_rules_dir(), self.rules_dir)
            (self.rules_dir / "widgets.toml").write_text(WIDGET_RULE, encoding="utf-8")
        self.config = self.write_config()

    def write_config(self) -> Path:
        lines = [
            "[store]",
            f'url = "{self.store_url}"',
            f'lease = "{self.lease}s"',
            "",
            "[fetch]",
            "allow_private_networks = true",
            "min_interval = 0.5",
            # Every feed is on one loopback host here; in life they are spread over many.
            "concurrency = 32",
            "per_host_concurrency = 32",
            "",
            "[prices]",
            "enabled = false",
            "",
            "[health]",
            "enabled = false",
            "",
            "[rules]",
            f'dir = "{self.rules_dir}"',
            "watch = false",
            "",
            "[dispatch]",
            f'grace = "{self.grace}s"',
            "",
            "[[notifiers]]",
            'name = "desk"',
            'kind = "discord"',
            f'url = "{self.discord.url}"',
            "digest_threshold = 1000",  # one message per story, so tests can count them
            "",
        ]
        for name in self.feeds.names:
            lines += [
                "[[feeds]]",
                f'name = "{name}"',
                f'url = "{self.feeds.url(name)}"',
                f"interval = {self.interval}",
                "adaptive = false",
                "",
            ]
        path = self.tmp_path / "config.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    async def spawn(self) -> Instance:
        log = self.tmp_path / f"instance-{len(self.instances)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "run", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
            )  # fmt: skip
        inst = Instance(proc, log)
        self.instances.append(inst)
        return inst

    async def start(self, n: int) -> list[Instance]:
        return [await self.spawn() for _ in range(n)]

    def kill(self, inst: Instance) -> float:
        """SIGKILL `inst`; returns the wall time of the kill."""
        os.kill(inst.proc.pid, signal.SIGKILL)
        return time.time()

    async def stop(self) -> None:
        """SIGTERM every live instance and wait for it (killing any that hangs)."""
        live = [i for i in self.instances if i.proc.returncode is None]
        for inst in live:
            with contextlib.suppress(ProcessLookupError):
                inst.proc.send_signal(signal.SIGTERM)
        for inst in live:
            try:
                await asyncio.wait_for(inst.proc.wait(), timeout=self.grace + 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    inst.proc.kill()
                await inst.proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {i.log.name}\n{i.log.read_text(errors='replace')[-3000:]}"
                         for i in self.instances)  # fmt: skip

    def feeds_fetched(self, inst: Instance) -> list[str]:
        """Feeds `inst` fetched with a 200 and recorded, per its log, in order."""
        return _FEED_POLLED.findall(inst.log.read_text(errors="replace"))

    def check_alive(self) -> None:
        for inst in self.instances:
            rc = inst.proc.returncode
            if rc is not None and rc != -signal.SIGKILL:
                raise AssertionError(f"{inst.log.name} exited with {rc}\n{self.logs()}")

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> float:
        """Seconds until `predicate()` is truthy; AssertionError (with logs) on timeout."""
        start = time.monotonic()
        while not predicate():
            self.check_alive()
            if time.monotonic() - start > timeout:
                raise AssertionError(f"condition not met within {timeout}s\n{self.logs()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    # ------------------------------------------------------------------ the shared schema

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        dsn, schema = split_schema(self.store_url)
        conn = await asyncpg.connect(dsn, timeout=5, server_settings={"search_path": schema or ""})
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def leases_held(self, owner: str, now: float) -> dict[str, float]:
        """Feeds leased to `owner` whose lease runs past `now`, with the lease's end."""
        rows = await self.query(
            "SELECT name, lease_until FROM feed_leases WHERE owner = $1 AND lease_until > $2",
            owner,
            datetime.fromtimestamp(now, UTC),
        )
        return {r["name"]: r["lease_until"].timestamp() for r in rows}

    async def outbox(self) -> list[asyncpg.Record]:
        return await self.query(
            "SELECT id, dedupe_key, status, lease_owner, alert->>'title' AS title "
            "FROM outbox ORDER BY id"
        )

    async def initialized(self) -> int:
        """How many feeds have had their first successful poll recorded."""
        rows = await self.query("SELECT COUNT(*) AS n FROM feeds WHERE initialized")
        return int(rows[0]["n"])


def titles_posted(discord: FakeDiscord) -> list[str]:
    """Embed titles of every accepted post (edits are PATCHes, not posts)."""
    return [e.get("title", "") for b in discord.delivered() for e in b.get("embeds", [])]
