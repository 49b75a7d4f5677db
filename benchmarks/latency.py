"""Alert latency through the real pipeline: poller, engine, alert builder,
outbox, dispatcher and the Discord notifier, against loopback fakes.

Two figures, both timed from outside the daemon:

* fetch -> ack: from the moment the feed server has written out the first body
  that carries a new matching story, to the moment the fake Discord has
  answered the post that carries it. Stories are spaced (default 0.8 s) so that
  Discord's 5 requests / 2 s stays out of the way, and the notifier's digest
  threshold is raised so that every story is its own message.
  The same is measured again with the notifier's price chart turned off
  (`chart = false`): rendering the PNG is the slowest step of an alert.
* publish -> delivery: a story appended to one of several feeds polled every
  5 s, at a random moment, until Discord answered; the target is p99 <=
  interval + 1 s. Stories come a third of an interval apart, so that one poll
  round rarely carries more than Discord takes in 2 s.

    python benchmarks/latency.py             # 200 + 200 + 200 stories (about 12 minutes)
    python benchmarks/latency.py --quick     # 15 + 15 + 12 stories, under a minute
    python benchmarks/latency.py --profile   # also print a pyinstrument profile of the
                                             # fetch -> ack phase on stderr

The last line of stdout is one JSON object: fetch_to_ack_p50_ms,
fetch_to_ack_p99_ms, publish_to_delivery_p50_s, publish_to_delivery_p99_s,
feed_interval_s, stories, and details.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPLAY_START,
    FeedFarm,
    bench_rules,
    emit,
    percentile,
    progress,
    quiet_logs,
    snapshot_rules,
    story_text,
    story_title,
)
from aiohttp import web

from monitor.app.daemon import Daemon
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
from monitor.demo.price_server import make_yahoo_app, nvda_2025_01_27
from tests.fakes.discord_server import FakeDiscord

SERIAL = re.compile(r"report (\d+)")


class TimedDiscord(FakeDiscord):
    """The fake Discord, noting when it answered each accepted post and which
    story serials (from "report N" in the headline) that post carried."""

    def __init__(self) -> None:
        super().__init__()
        self.acked: dict[int, float] = {}
        self.digests = 0

    async def _execute(self, request: web.Request) -> web.Response:
        resp = await super()._execute(request)
        if 200 <= resp.status < 300:
            done = time.monotonic()
            body = json.dumps(self.received[-1].body, ensure_ascii=False)
            serials = {int(m) for m in SERIAL.findall(body)}
            if len(serials) > 1:
                self.digests += 1
            for s in serials:
                self.acked.setdefault(s, done)
        return resp

    def rate_limited(self) -> int:
        return sum(1 for r in self.received if r.status == 429)


class Rig:
    """Feed farm + Yahoo + timed Discord + the daemon, in this process."""

    def __init__(self, tmp: Path, feeds: int, interval: float, charts: bool = True) -> None:
        self.tmp = tmp
        self.interval = interval
        self.charts = charts
        self.clock = OffsetClock(REPLAY_START)
        self.farm = FeedFarm(self.clock.now)
        self.names = [f"wire-{i}" for i in range(feeds)]
        for n in self.names:
            self.farm.add(n, items=5, seed=hash(n) & 0xFFFF)
        self.discord = TimedDiscord()
        self.rules = bench_rules(tmp / "rules")
        self.stop = asyncio.Event()
        self.daemon: Daemon | None = None
        self._task: asyncio.Task[None] | None = None
        self._yahoo: web.AppRunner | None = None
        self.guid_serial: dict[str, int] = {}

    def config(self, yahoo_url: str) -> Config:
        return Config(
            store=StoreConfig(url=f"sqlite:///{self.tmp / 'state.db'}"),
            fetch=FetchConfig(allow_private_networks=True, min_interval=0.5),
            feeds=[
                FeedConfig(
                    name=n,
                    url=self.farm.url(n),
                    interval=self.interval,
                    adaptive=False,
                    timezone="America/New_York",
                )
                for n in self.names
            ],
            prices=PricesConfig(symbols=["NVDA"], yahoo_base_url=yahoo_url, interval=30.0),
            notifiers=[
                NotifierConfig(
                    name="discord",
                    kind="discord",
                    url=self.discord.url,
                    digest_threshold=100_000,  # every story its own message
                    chart=self.charts,
                )
            ],
            rules=RulesConfig(dir=str(self.rules), watch=True),
            health=HealthConfig(port=0),
        )

    async def __aenter__(self) -> Rig:
        await self.farm.start()
        await self.discord.__aenter__()
        self._yahoo = web.AppRunner(
            make_yahoo_app([nvda_2025_01_27()], self.clock), access_log=None
        )
        await self._yahoo.setup()
        await web.TCPSite(self._yahoo, "127.0.0.1", 0).start()
        yahoo_url = f"http://127.0.0.1:{self._yahoo.addresses[0][1]}"
        self.daemon = Daemon(
            self.config(yahoo_url),
            rules_dir=self.rules,
            clock=self.clock,
            environ={},
            instance_id="latency",
        )
        self._task = asyncio.create_task(self.daemon.run(self.stop))
        await asyncio.wait_for(self.daemon.started.wait(), 30)
        # The first fetch of each feed is recorded silently: let it happen first.
        await self.wait(lambda: self.farm.polled() == len(self.names), 30)
        await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 40)
        if self._yahoo is not None:
            await self._yahoo.cleanup()
        await self.discord.__aexit__()
        await self.farm.stop()

    async def wait(self, predicate: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not predicate():
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("daemon stopped by itself")
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.05)
        return True

    def publish(self, serial: int, feed: str, rng: random.Random) -> str:
        guid = self.farm.publish(feed, story_title(serial, rng), story_text(True))
        self.guid_serial[guid] = serial
        return guid

    def delivered(self, guids: list[str]) -> int:
        return sum(1 for g in guids if self.guid_serial[g] in self.discord.acked)


@contextlib.contextmanager
def profiled(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled", interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=True, show_all=False), file=sys.stderr)


async def fetch_to_ack(stories: int, gap: float, profile: bool, charts: bool) -> dict[str, Any]:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d:
        async with Rig(Path(d), feeds=4, interval=1.0, charts=charts) as rig:
            progress(
                f"fetch->ack, charts {'on' if charts else 'off'}: {stories} stories, "
                f"one every {gap}s over 4 feeds"
            )
            guids: list[str] = []
            with profiled(profile):
                for k in range(stories):
                    guids.append(rig.publish(k, rig.names[k % 4], rng))
                    await asyncio.sleep(gap)
                    if k % 50 == 49:
                        progress(f"  {k + 1} published, {rig.delivered(guids)} delivered")
                await rig.wait(lambda: rig.delivered(guids) == len(guids), 30)
            latencies = [
                (rig.discord.acked[rig.guid_serial[g]] - rig.farm.sent_at[g]) * 1000
                for g in guids
                if rig.guid_serial[g] in rig.discord.acked and g in rig.farm.sent_at
            ]
            return {
                "stories": stories,
                "delivered": len(latencies),
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "max_ms": round(max(latencies, default=float("nan")), 2),
                "digests": rig.discord.digests,
                "rate_limited": rig.discord.rate_limited(),
            }


async def publish_to_delivery(stories: int, gap: float, interval: float) -> dict[str, Any]:
    rng = random.Random(2)
    feeds = 8
    with tempfile.TemporaryDirectory() as d:
        async with Rig(Path(d), feeds=feeds, interval=interval) as rig:
            progress(
                f"publish->delivery: {stories} stories at random moments over {feeds} feeds "
                f"polled every {interval}s"
            )
            guids: list[str] = []
            start = time.monotonic()
            for k in range(stories):
                # Story k lands at a random moment of its own slot of `gap` seconds.
                at = start + k * gap + rng.uniform(0, gap)
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                guids.append(rig.publish(100_000 + k, rng.choice(rig.names), rng))
                if k % 50 == 49:
                    progress(f"  {k + 1} published, {rig.delivered(guids)} delivered")
            await rig.wait(lambda: rig.delivered(guids) == len(guids), interval + 30)
            delays = [
                rig.discord.acked[rig.guid_serial[g]] - rig.farm.published_at[g]
                for g in guids
                if rig.guid_serial[g] in rig.discord.acked
            ]
            return {
                "stories": stories,
                "delivered": len(delays),
                "p50_s": round(percentile(delays, 50), 3),
                "p99_s": round(percentile(delays, 99), 3),
                "max_s": round(max(delays, default=float("nan")), 3),
                "rate_limited": rig.discord.rate_limited(),
            }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    a = await fetch_to_ack(args.stories, args.gap, args.profile, charts=True)
    progress(f"fetch->ack p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms")
    plain = await fetch_to_ack(args.stories, args.gap, False, charts=False)
    progress(f"fetch->ack without charts p50 {plain['p50_ms']} ms, p99 {plain['p99_ms']} ms")
    b = await publish_to_delivery(args.publish_stories, args.publish_gap, args.interval)
    progress(f"publish->delivery p50 {b['p50_s']} s, p99 {b['p99_s']} s")
    return {
        "fetch_to_ack_p50_ms": a["p50_ms"],
        "fetch_to_ack_p99_ms": a["p99_ms"],
        "publish_to_delivery_p50_s": b["p50_s"],
        "publish_to_delivery_p99_s": b["p99_s"],
        "feed_interval_s": args.interval,
        "stories": a["stories"] + plain["stories"] + b["stories"],
        "fetch_to_ack_no_chart_p50_ms": plain["p50_ms"],
        "fetch_to_ack_no_chart_p99_ms": plain["p99_ms"],
        "fetch_to_ack": a,
        "fetch_to_ack_no_chart": plain,
        "publish_to_delivery": b,
        # Other work on the machine shows up in the tails: say how busy it was.
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "targets_met": {
            "fetch_to_ack_p99_le_20ms": a["p99_ms"] <= 20,
            "fetch_to_ack_no_chart_p99_le_20ms": plain["p99_ms"] <= 20,
            "publish_to_delivery_p99_le_interval_plus_1s": b["p99_s"] <= args.interval + 1,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="15 + 15 + 12 stories, under a minute")
    p.add_argument("--smoke", action="store_true", help="a few stories (for tests)")
    p.add_argument("--stories", type=int, default=None, help="fetch->ack stories")
    p.add_argument("--gap", type=float, default=0.8, help="seconds between fetch->ack stories")
    p.add_argument("--publish-stories", type=int, default=None)
    p.add_argument(
        "--publish-gap",
        type=float,
        default=None,
        help="seconds between publish->delivery stories (default: a third of the interval)",
    )
    p.add_argument("--interval", type=float, default=5.0, help="feed interval, publish->delivery")
    p.add_argument("--profile", action="store_true", help="pyinstrument the fetch->ack phase")
    args = p.parse_args()
    if args.smoke:
        args.stories = args.stories or 4
        args.publish_stories = args.publish_stories or 3
        args.interval = 1.0
        args.gap = 0.3
    elif args.quick:
        # The same spacing as the full run: closer stories bunch up in the feeds' poll
        # rounds and meet Discord's 5 posts / 2 s, which is pacing, not latency.
        args.stories = args.stories or 15
        args.publish_stories = args.publish_stories or 12
    args.stories = args.stories or 200
    args.publish_gap = args.publish_gap or args.interval / 3
    args.publish_stories = args.publish_stories or 200
    quiet_logs()
    snapshot_rules()
    emit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
