"""Ingest throughput: feeds per second through fetch, parse, dedupe and commit.

A local server (its own process, 127.0.0.1) serves N feeds of 50 items (~50 KB
each) with ETags. Measured:

* cold: the first poll of every feed into an empty SQLite store (the median of
  `--cold-rounds`, each into a new store);
* warm: rounds in which 10% of the feeds gain one item and the rest answer 304;
* reader: the same cold round done by the `reader` library (`update_feeds`)
  into its own empty database, in the same run (the median of `--reader-rounds`).

A single cold round of 500 feeds lasts a second or two, so one round can land on a
moment when the other core is busy; the medians keep one such moment out of the
ratio.

Rates are wall-clock; the `*_cpu_ms_per_feed` figures (CPU time of this
process, all threads) are the steadier measure on a shared, busy machine.

    python benchmarks/ingest.py            # 500 feeds, 3 warm rounds, reader on all 500
    python benchmarks/ingest.py --quick    # under a minute: reader on 100 feeds

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.app.poll import Poller
from monitor.clock import SystemClock
from monitor.config import Config, FeedConfig, FetchConfig
from monitor.feeds.http import make_session
from monitor.feeds.parse import LAST_BUILT
from monitor.store import open_store

ITEMS = 50
WORDS = [
    "엔비디아", "딥시크", "HBM", "반도체", "Nvidia", "Blackwell",
    "export", "controls", "SK하이닉스", "삼성전자", "TSMC",
]  # fmt: skip


def item_xml(feed: int, i: int) -> str:
    rnd = random.Random(feed * 100_003 + i)
    words = " ".join(rnd.choice(WORDS) for _ in range(60))
    return (
        f"<item><title>[속보] 피드 {feed} 기사 {i}: {' '.join(rnd.sample(WORDS, 5))}</title>"
        f"<link>https://news.example.com/{feed}/{i}</link>"
        f"<guid isPermaLink='false'>f{feed}-i{i}</guid>"
        f"<description><![CDATA[<p>{words}</p>]]></description>"
        f"<pubDate>Thu, 30 Jan 2025 {i % 24:02d}:{i % 60:02d}:00 +0900</pubDate></item>"
    )


class Feeds:
    """Bodies and ETags for every feed; `bump` adds one item to a share of them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.sizes = [ITEMS] * count
        self.bodies: list[bytes] = [self.render(f) for f in range(count)]
        self.etags = [f'"{f}-{ITEMS}"' for f in range(count)]

    def render(self, feed: int) -> bytes:
        n = self.sizes[feed]
        items = "".join(item_xml(feed, i) for i in range(n - ITEMS, n))
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>feed {feed}</title>{items}</channel></rss>"
        ).encode()

    def bump(self, share: float, seed: int) -> int:
        chosen = random.Random(seed).sample(range(self.count), int(self.count * share))
        for f in chosen:
            self.sizes[f] += 1
            self.bodies[f] = self.render(f)
            self.etags[f] = f'"{f}-{self.sizes[f]}"'
        return len(chosen)


def serve(count: int, port_out: Any) -> None:
    feeds = Feeds(count)

    async def feed(request: web.Request) -> web.Response:
        f = int(request.match_info["n"])
        if request.headers.get("If-None-Match") == feeds.etags[f]:
            return web.Response(status=304, headers={"ETag": feeds.etags[f]})
        return web.Response(
            body=feeds.bodies[f],
            headers={"ETag": feeds.etags[f], "Content-Type": "application/rss+xml"},
        )

    async def bump(request: web.Request) -> web.Response:
        n = feeds.bump(float(request.query["share"]), int(request.query["seed"]))
        return web.Response(text=str(n))

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        app.router.add_post("/bump", bump)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        assert site._server is not None
        port_out.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def make_config(base: str, count: int, db: Path) -> Config:
    return Config(
        store={"url": f"sqlite:///{db}"},  # type: ignore[arg-type]
        fetch=FetchConfig(allow_private_networks=True, concurrency=64, per_host_concurrency=64),
        feeds=[FeedConfig(name=f"f{i}", url=f"{base}/feed/{i}.xml") for i in range(count)],
    )


async def cold_round(base: str, count: int, db: Path) -> tuple[float, float, list[str]]:
    """One cold round into a new store: (wall seconds, CPU seconds, parsers used)."""
    # The parser keeps each feed's last articles to skip rebuilding them; a cold round
    # must build everything, as a process that has never seen these feeds does.
    LAST_BUILT.clear()
    config = make_config(base, count, db)
    clock = SystemClock()
    store = open_store(config.store.url, clock=clock, instance_id="bench")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, owner="bench")
        t, cpu = time.perf_counter(), time.process_time()
        cold = await poller.poll_all()
        wall, used = time.perf_counter() - t, time.process_time() - cpu
    assert all(o.status == "ok" for o in cold), [o.error for o in cold if o.error][:3]
    return wall, used, sorted({o.parser for o in cold})


async def ours(base: str, count: int, cold_rounds: int, rounds: int, tmp: Path) -> dict[str, Any]:
    import aiohttp

    colds = [await cold_round(base, count, tmp / f"cold{k}.db") for k in range(cold_rounds - 1)]
    config = make_config(base, count, tmp / "ours.db")
    clock = SystemClock()
    LAST_BUILT.clear()
    store = open_store(config.store.url, clock=clock, instance_id="bench")
    async with store, make_session(config.fetch) as session, aiohttp.ClientSession() as ctl:
        poller = Poller(config, store, session, clock, owner="bench")
        t, cpu = time.perf_counter(), time.process_time()
        cold = await poller.poll_all()
        colds.append((time.perf_counter() - t, time.process_time() - cpu, []))
        assert all(o.status == "ok" for o in cold), [o.error for o in cold if o.error][:3]
        warm: list[float] = []
        warm_cpu: list[float] = []
        for r in range(rounds):
            async with ctl.post(f"{base}/bump?share=0.1&seed={r}") as resp:
                bumped = int(await resp.text())
            t, cpu = time.perf_counter(), time.process_time()
            outcomes = await poller.poll_all()
            warm.append(time.perf_counter() - t)
            warm_cpu.append(time.process_time() - cpu)
            changed = sum(1 for o in outcomes if o.status == "ok")
            new = sum(len(o.new) for o in outcomes)
            assert changed == bumped and new == bumped, (changed, new, bumped)
    parsers = {o.parser for o in cold}
    cold_s = statistics.median(c[0] for c in colds)
    return {
        "cold_s": cold_s,
        "cold_feeds_per_s": count / cold_s,
        "cold_rounds_s": [round(c[0], 3) for c in colds],
        "warm_feeds_per_s": count / statistics.median(warm) if warm else 0.0,
        "warm_rounds_s": [round(w, 3) for w in warm],
        # CPU seconds of this process (all threads): steadier than wall time on a busy host
        "cold_cpu_ms_per_feed": 1000 * statistics.median(c[1] for c in colds) / count,
        "warm_cpu_ms_per_feed": 1000 * statistics.median(warm_cpu) / count if warm_cpu else 0.0,
        "parsers": sorted(parsers),
    }


def reader_cold(base: str, count: int, db: Path, workers: int) -> tuple[float, float]:
    """One cold round of `reader` into a new database: (feeds/s, CPU ms per feed)."""
    from reader import make_reader

    reader = make_reader(str(db))
    for i in range(count):
        reader.add_feed(f"{base}/feed/{i}.xml")
    t, cpu = time.perf_counter(), time.process_time()
    reader.update_feeds(workers=workers)
    elapsed = time.perf_counter() - t
    cpu_ms_per_feed = 1000 * (time.process_time() - cpu) / count
    entries = reader.get_entry_counts().total
    reader.close()
    assert entries == count * ITEMS, entries
    return count / elapsed, cpu_ms_per_feed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds")
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold rounds (median)")
    parser.add_argument("--reader-rounds", type=int, default=3, help="reader rounds (median)")
    parser.add_argument("--reader-feeds", type=int, default=None)
    parser.add_argument("--reader-workers", type=int, default=4)
    args = parser.parse_args()
    reader_feeds = args.reader_feeds or (100 if args.quick else args.feeds)
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=serve, args=(args.feeds, send), daemon=True)
    proc.start()
    try:
        port = recv.recv()
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            result = asyncio.run(ours(base, args.feeds, args.cold_rounds, args.rounds, tmp))
            cold, warm = result["cold_feeds_per_s"], result["warm_feeds_per_s"]
            print(f"ours: cold {cold:.0f} feeds/s (rounds {result['cold_rounds_s']} s), "
                  f"warm {warm:.0f} feeds/s")  # fmt: skip
            runs = [
                reader_cold(base, reader_feeds, tmp / f"reader{k}.sqlite", args.reader_workers)
                for k in range(args.reader_rounds)
            ]
            reader_fps = statistics.median(r[0] for r in runs)
            reader_cpu = statistics.median(r[1] for r in runs)
            print(f"reader: cold {reader_fps:.1f} feeds/s over {reader_feeds} feeds "
                  f"(rounds {[round(r[0], 1) for r in runs]})")  # fmt: skip
    finally:
        proc.terminate()
        proc.join(5)
    summary = {
        "feeds": args.feeds,
        "items_per_feed": ITEMS,
        "feed_bytes": len(Feeds(1).bodies[0]),
        "cold_feeds_per_s": round(result["cold_feeds_per_s"], 1),
        "warm_feeds_per_s": round(result["warm_feeds_per_s"], 1),
        "reader_cold_feeds_per_s": round(reader_fps, 1),
        "reader_feeds": reader_feeds,
        "cold_rounds": args.cold_rounds,
        "reader_rounds": args.reader_rounds,
        "ratio_vs_reader": round(result["cold_feeds_per_s"] / reader_fps, 1),
        "cold_cpu_ms_per_feed": round(result["cold_cpu_ms_per_feed"], 2),
        "reader_cold_cpu_ms_per_feed": round(reader_cpu, 2),
        "ratio_vs_reader_cpu": round(reader_cpu / result["cold_cpu_ms_per_feed"], 1),
        "warm_cpu_ms_per_feed": round(result["warm_cpu_ms_per_feed"], 2),
        "parsers": result["parsers"],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
