"""A whole trading desk on loopback: a feed host, Yahoo, Discord and Slack, and the
daemon wired to them, for end-to-end tests.

    async with Desk(tmp_path) as desk:
        desk.publish(title=..., description=...)
        await desk.wait_for(lambda: desk.discord.delivered(), 5)
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from monitor.app.daemon import Daemon
from monitor.clock import OffsetClock
from monitor.config import (
    Config,
    DispatchConfig,
    FeedConfig,
    FetchConfig,
    HealthConfig,
    NotifierConfig,
    PricesConfig,
    RulesConfig,
    StoreConfig,
)
from monitor.demo.price_server import make_yahoo_app, nvda_2025_01_27
from monitor.rulefiles import default_rules_dir
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feed_server import FeedServer
from tests.fakes.loopback import serve
from tests.fakes.slack_server import FakeSlack

# 15:45 New York time on 2025-01-27: NVDA trades near its low, -17% on the day.
DESK_START = datetime(2025, 1, 27, 20, 45, tzinfo=UTC)


def rss(items: list[dict[str, str]], title: str = "Desk Wire") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link>",
        "<description>test wire</description>",
    ]
    for it in items:
        parts.append(
            "<item>"
            f"<title>{escape(it['title'])}</title>"
            f"<link>{escape(it['link'])}</link>"
            f'<guid isPermaLink="false">{escape(it["guid"])}</guid>'
            f"<pubDate>{it['pubDate']}</pubDate>"
            f"<description>{escape(it.get('description', ''))}</description>"
            "</item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


class Desk:
    """Feed host + fake Yahoo + fake Discord + fake Slack + a running daemon."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        feed_interval: float = 1.0,
        grace: float = 5.0,
        rules_dir: Path | None = None,
        followups: tuple[float, ...] = (900.0, 3600.0),
    ) -> None:
        self.followups = followups
        self.tmp_path = tmp_path
        self.feed_interval = feed_interval
        self.grace = grace
        self.clock = OffsetClock(DESK_START)
        self.feeds = FeedServer()
        self.discord = FakeDiscord()
        self.slack = FakeSlack()
        self.items: list[dict[str, str]] = []
        self.rules_dir = rules_dir or tmp_path / "rules"
        if rules_dir is None:
            shutil.copytree(default_rules_dir(), self.rules_dir)
        self._yahoo_runner: web.AppRunner | None = None
        self.yahoo_url = ""
        self.daemon: Daemon | None = None
        self.stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._serial = 0

    # ------------------------------------------------------------------ the wire

    def publish(self, title: str, description: str = "", minutes_ago: float = 1.0) -> str:
        """Append a story to the wire feed; returns its guid."""
        self._serial += 1
        guid = f"desk-{self._serial}"
        when = self.clock.now().timestamp() - minutes_ago * 60
        self.items.insert(
            0,
            {
                "title": title,
                "link": f"http://127.0.0.1/articles/{guid}",
                "guid": guid,
                "pubDate": format_datetime(datetime.fromtimestamp(when, UTC)),
                "description": description,
            },
        )
        route = self.feeds.add("/wire.xml", rss(self.items), etag=f'"v{self._serial}"')
        assert route.etag
        return guid

    def config(self) -> Config:
        return Config(
            store=StoreConfig(url=f"sqlite:///{self.tmp_path / 'state.db'}"),
            fetch=FetchConfig(allow_private_networks=True, min_interval=0.5),
            feeds=[
                FeedConfig(
                    name="wire",
                    url=self.feeds.url("/wire.xml"),
                    lang="en",
                    interval=self.feed_interval,
                    timezone="America/New_York",
                    adaptive=False,
                )
            ],
            prices=PricesConfig(
                symbols=["NVDA"],
                yahoo_base_url=self.yahoo_url,
                interval=1.0,
                followups=list(self.followups),
            ),
            notifiers=[
                NotifierConfig(name="discord", kind="discord", url=self.discord.url),  # type: ignore[arg-type]
                NotifierConfig(name="slack", kind="slack", url=self.slack.url),  # type: ignore[arg-type]
            ],
            rules=RulesConfig(dir=str(self.rules_dir), watch=True),
            health=HealthConfig(port=0),
            dispatch=DispatchConfig(grace=self.grace),
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Desk:
        self.feeds.add("/wire.xml", rss([]), etag='"v0"')
        await self.feeds.__aenter__()
        await self.discord.__aenter__()
        await self.slack.__aenter__()
        self._yahoo_runner, port = await serve(make_yahoo_app([nvda_2025_01_27()], self.clock))
        self.yahoo_url = f"http://127.0.0.1:{port}"
        self.daemon = Daemon(
            self.config(), rules_dir=self.rules_dir, clock=self.clock, environ={}, instance_id="t"
        )
        self._task = asyncio.create_task(self.daemon.run(self.stop))
        await self.wait_for(lambda: self.daemon is not None and self.daemon.started.is_set(), 10)
        # The first fetch of a feed is recorded, not reported: wait until it happened.
        await self.wait_for(lambda: self.feeds.hits("/wire.xml") >= 1, 10)
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=self.grace + 10)
        if self._yahoo_runner is not None:
            await self._yahoo_runner.cleanup()
        await self.slack.__aexit__()
        await self.discord.__aexit__()
        await self.feeds.__aexit__()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> float:
        """Seconds it took until `predicate()` was truthy; AssertionError on timeout."""
        start = time.monotonic()
        while not predicate():
            if self._task is not None and self._task.done():
                self._task.result()  # surface the daemon's own failure
                raise AssertionError("daemon stopped")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def metrics(self) -> str:
        assert self.daemon is not None and self.daemon.health_port
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{self.daemon.health_port}/metrics") as r,
        ):
            return await r.text()

    async def get(self, path: str) -> tuple[int, str]:
        assert self.daemon is not None and self.daemon.health_port
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{self.daemon.health_port}{path}") as r,
        ):
            return r.status, await r.text()
