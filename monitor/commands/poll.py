"""`monitor poll`: poll the configured feeds and print what is new.

`--once` polls every enabled feed once, due or not, and exits; without it the
command keeps polling feeds as they fall due until interrupted. New articles go
to stdout (one JSON object per line with `--json`), each feed's failure to
stderr as one line. A feed is printed right after its poll is committed, so an
interrupted run neither repeats nor loses what it printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from monitor.app.poll import FeedOutcome, Poller
from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.core.dates import to_utc_z
from monitor.core.models import Article
from monitor.feeds.http import make_session
from monitor.store import open_store

IDLE_CAP_S = 30.0


def register(sub: Any) -> None:
    p = sub.add_parser("poll", help="poll the feeds and print new articles")
    p.add_argument("--once", action="store_true", help="poll every feed once, then exit")
    p.add_argument("--config", help="config file (default: embedded defaults)")
    p.add_argument("--json", action="store_true", help="one JSON object per article")
    p.set_defaults(func=run)


def article_json(a: Article) -> dict[str, Any]:
    return {
        "feed": a.feed,
        "title": a.title,
        "link": a.link,
        "published": to_utc_z(a.published) if a.published else None,
        "lang": a.lang,
        "summary": a.summary,
    }


def article_line(a: Article) -> str:
    when = to_utc_z(a.published) if a.published else "-"
    return f"{when}  [{a.feed}] {a.title}  {a.link}".rstrip()


def emit(outcome: FeedOutcome, as_json: bool) -> None:
    for a in outcome.new:
        line = json.dumps(article_json(a), ensure_ascii=False) if as_json else article_line(a)
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if outcome.status == "error":
        print(f"feed {outcome.feed}: error: {outcome.error}", file=sys.stderr, flush=True)


async def _poll(config: Config, once: bool, as_json: bool) -> None:
    clock = SystemClock()
    store = open_store(config.store.url, instance_id=config.store.instance_id, clock=clock)
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, owner=store.instance_id, report_first=True)
        if once:
            async for outcome in poller.poll_each():
                emit(outcome, as_json)
            return
        while True:
            for outcome in await poller.poll_due():
                emit(outcome, as_json)
            states = [s for s in await store.load_feed_states() if s.next_poll_at is not None]
            soonest = min((s.next_poll_at for s in states if s.next_poll_at), default=None)
            wait = (soonest - clock.now()).total_seconds() if soonest else IDLE_CAP_S
            await asyncio.sleep(min(max(wait, 1.0), IDLE_CAP_S))


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # ConfigError -> exit 1 in cli.main
    if not config.feeds:
        print("monitor poll: no feeds configured", file=sys.stderr)
        return 0
    asyncio.run(_poll(config, args.once, args.json))
    return 0
