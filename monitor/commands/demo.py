"""`monitor demo`: the whole pipeline offline, in well under a minute.

Serves the bundled sample feeds (Korean and English, the DeepSeek selloff of
2025-01-27 and the debate that followed) and a replayed NVDA session on
127.0.0.1, runs the real daemon on them with a console notifier, prints each
alert as it would be posted, holds one story back to show it arriving on a
later poll, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.app.daemon import Daemon, DaemonHooks
from monitor.app.poll import FeedOutcome
from monitor.clock import OffsetClock
from monitor.config import (
    Config,
    FeedConfig,
    FetchConfig,
    HealthConfig,
    NotifierConfig,
    PricesConfig,
    RulesConfig,
    StoreConfig,
)
from monitor.demo.feed_server import DemoFeedServer
from monitor.demo.price_server import make_yahoo_app, nvda_2025_01_27
from monitor.rulefiles import resolve_rules_dir

# A minute before the close in New York on the day of the selloff: NVDA prints 118.42,
# -16.97% on the day, and the stories of the afternoon are out.
DEMO_START = datetime(2025, 1, 27, 20, 59, 5, tzinfo=UTC)
LATE_FEED = "late-ko"
FEED_LANGS = {"yonhap-market": "ko", "gnews-ko": "ko", "late-ko": "ko", "wire-en": "en"}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline offline on bundled sample data")
    p.add_argument("--timeout", type=float, default=45.0, help="give up after this many seconds")
    p.add_argument("--rules", help="rules directory (default: ./rules or the bundled rules)")
    p.set_defaults(func=run)


def demo_config(base_url: str, data_dir: Path) -> Config:
    feeds = [
        FeedConfig(
            name=name,
            url=f"{base_url}/feeds/{name}.xml",
            lang=lang,
            interval=2.0,
            timezone="Asia/Seoul" if lang == "ko" else "America/New_York",
            backfill=True,  # a demo wants its sample stories, not a silent first fetch
            adaptive=False,
        )
        for name, lang in FEED_LANGS.items()
    ]
    return Config(
        store=StoreConfig(url=f"sqlite:///{data_dir / 'demo.db'}"),
        fetch=FetchConfig(allow_private_networks=True, min_interval=1.0),
        feeds=feeds,
        prices=PricesConfig(symbols=["NVDA"], yahoo_base_url=f"{base_url}/yahoo", interval=2.0),
        # Eight sample stories in a few seconds are the point of the demo, not a burst to fold.
        notifiers=[NotifierConfig(name="console", kind="console", digest_threshold=20)],
        rules=RulesConfig(watch=False),
        health=HealthConfig(enabled=False),
    )


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.delivered = 0
        self.polls = 0

    def say(self, text: str) -> None:
        print(f"[demo {time.monotonic() - self.started:4.1f}s] {text}", file=sys.stderr, flush=True)

    def on_poll(self, outcomes: list[FeedOutcome]) -> None:
        self.polls += 1
        new = sum(len(o.new) for o in outcomes)
        if new:
            names = ", ".join(o.feed for o in outcomes if o.new)
            self.say(f"polled {len(outcomes)} feed(s): {new} new article(s) from {names}")

    def on_delivered(self, destination: str, title: str) -> None:
        self.delivered += 1


async def _wait_for(predicate: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def _demo(args: argparse.Namespace) -> int:
    progress = _Progress()
    clock = OffsetClock(DEMO_START)
    feeds = DemoFeedServer(held_back={LATE_FEED})
    app = feeds.app()
    app.add_subapp("/yahoo", make_yahoo_app([nvda_2025_01_27()], clock))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    progress.say(f"serving {len(feeds.names)} sample feeds and a replayed NVDA session on {base}")
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp:
            cfg = demo_config(base, Path(tmp))
            rules_dir = resolve_rules_dir(None, None, args.rules)
            daemon = Daemon(
                cfg,
                rules_dir=rules_dir,
                clock=clock,
                environ={},
                instance_id="demo",
                hooks=DaemonHooks(on_poll=progress.on_poll, on_delivered=progress.on_delivered),
            )
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                budget = args.timeout
                first = await _wait_for(lambda: progress.delivered >= 3 or task.done(), budget / 2)
                if task.done():
                    await task
                    return 1
                progress.say(
                    f"{progress.delivered} alert(s) so far; publishing the held-back story"
                    if first
                    else "no alerts yet; publishing the held-back story anyway"
                )
                before = progress.delivered
                feeds.release(LATE_FEED)
                await _wait_for(lambda: progress.delivered > before, budget / 2)
            finally:
                stop.set()
                await task
    finally:
        await runner.cleanup()
    progress.say(f"done: {progress.delivered} alert(s) delivered")
    return 0 if progress.delivered else 1


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))
