"""Soak: the real daemon against 500 loopback feeds for N minutes; is it flat?

A child process serves the feeds (every tenth gains an item each round, one
in four of those new items names Nvidia; the rest answer 304; feed 0 answers
only after 8 s; feed 1 alternates 500 and malformed XML), a fake Discord that
enforces 5 requests / 2 s, and a replayed NVDA price. The daemon runs in this
process, so RSS, open fds and the number of asyncio tasks are its own; they are
sampled every few seconds.

    python benchmarks/soak.py              # 10 minutes
    python benchmarks/soak.py --quick      # 1 minute
    python benchmarks/soak.py --minutes 30 --feeds 1000

The last line of stdout is one JSON object: rss_start_mb (after the first
round), rss_end_mb, rss_max_mb, tasks_start, tasks_end, fds_start, fds_end,
alerts_delivered, minutes, and more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _common import (
    REPLAY_START,
    FarmProcess,
    FarmSpec,
    bench_rules,
    emit,
    farm_name,
    progress,
    quiet_logs,
    rss_mb,
)

from monitor.app.daemon import Daemon, DaemonHooks
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


def soak_config(
    tmp: Path, farm: FarmProcess, feeds: int, round_s: float, followups: bool = True
) -> Config:
    return Config(
        store=StoreConfig(url=f"sqlite:///{tmp / 'soak.db'}"),
        # Every feed is on one loopback port here; in life they are on many hosts.
        fetch=FetchConfig(
            allow_private_networks=True,
            min_interval=1.0,
            concurrency=32,
            per_host_concurrency=32,
            total_timeout=20.0,
        ),
        feeds=[
            FeedConfig(
                name=farm_name(i),
                url=farm.feed_url(i),
                interval=round_s,
                adaptive=False,
                timezone="America/New_York",
            )
            for i in range(feeds)
        ],
        prices=PricesConfig(
            symbols=["NVDA"],
            yahoo_base_url=farm.info["yahoo_url"],
            interval=5.0,
            # Each news alert with a price keeps itself for its +15 / +60 min follow-ups.
            followups=[900.0, 3600.0] if followups else [],
        ),
        notifiers=[NotifierConfig(name="discord", kind="discord", url=farm.info["discord_url"])],
        rules=RulesConfig(dir=str(tmp / "rules"), watch=True),
        health=HealthConfig(port=0),
    )


def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int = 15) -> None:
    """The allocation sites that grew most between two snapshots, on stderr."""
    stats = after.compare_to(before, "traceback")
    progress(f"tracemalloc: top {n} growth sites")
    for stat in stats[:n]:
        print(f"  +{stat.size_diff / 1024:9.1f} KiB  {stat.count_diff:+7d} blocks", file=sys.stderr)
        for line in stat.traceback.format()[-8:]:
            print(f"      {line}", file=sys.stderr)


async def soak(
    minutes: float,
    feeds: int,
    sample_s: float,
    round_s: float,
    trace: bool = False,
    followups: bool = True,
) -> dict[str, Any]:
    spec = FarmSpec(feeds=feeds, round_s=round_s, slow_s=min(8.0, round_s))
    proc = psutil.Process()
    delivered = 0

    def on_delivered(destination: str, title: str) -> None:
        nonlocal delivered
        delivered += 1

    with tempfile.TemporaryDirectory() as d, FarmProcess(spec) as farm:
        tmp = Path(d)
        rules = bench_rules(tmp / "rules")
        cfg = soak_config(tmp, farm, feeds, round_s, followups)
        daemon = Daemon(
            cfg,
            rules_dir=rules,
            clock=OffsetClock(REPLAY_START),
            environ={},
            instance_id="soak",
            hooks=DaemonHooks(on_delivered=on_delivered),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.started.wait(), 30)
        rss_boot = rss_mb()
        progress(f"daemon started with {feeds} feeds; rss {rss_boot:.1f} MB")
        samples: list[dict[str, float]] = []
        before: tracemalloc.Snapshot | None = None
        start = time.monotonic()
        end = start + minutes * 60
        warm = start + round_s * 1.5  # the first round (and the first-fetch records) is over
        try:
            while time.monotonic() < end:
                await asyncio.sleep(min(sample_s, max(0.0, end - time.monotonic())))
                if task.done():
                    task.result()
                    raise RuntimeError("daemon stopped by itself")
                counters = farm.counters()
                s = {
                    "t": time.monotonic() - start,
                    "rss": rss_mb(),
                    "tasks": len(asyncio.all_tasks()),
                    "fds": proc.num_fds(),
                    "delivered": delivered,
                    "hits": counters.get("hits", 0),
                }
                samples.append(s)
                if trace and before is None and time.monotonic() >= warm:
                    before = tracemalloc.take_snapshot()
                progress(
                    f"t={s['t']:6.0f}s rss={s['rss']:6.1f} MB tasks={s['tasks']:4d} "
                    f"fds={s['fds']:4d} fetches={s['hits']:6d} alerts={delivered:5d}"
                )
            if trace and before is not None:
                top_growth(before, tracemalloc.take_snapshot())
        finally:
            stop.set()
            await asyncio.wait_for(task, cfg.dispatch.grace + 30)
        counters = farm.counters()

    steady = [s for s in samples if s["t"] >= warm - start] or samples
    first, last = steady[0], samples[-1]
    half = len(steady) // 2
    early = statistics.median(s["rss"] for s in steady[: max(1, half)])
    late = statistics.median(s["rss"] for s in steady[half:])
    return {
        "minutes": round(minutes, 2),
        "followups": followups,
        "feeds": feeds,
        "round_s": round_s,
        "rss_boot_mb": round(rss_boot, 1),
        "rss_start_mb": round(first["rss"], 1),
        "rss_end_mb": round(last["rss"], 1),
        "rss_max_mb": round(max(s["rss"] for s in samples), 1),
        "rss_first_half_median_mb": round(early, 1),
        "rss_second_half_median_mb": round(late, 1),
        "tasks_start": int(first["tasks"]),
        "tasks_end": int(last["tasks"]),
        "tasks_max": int(max(s["tasks"] for s in samples)),
        "fds_start": int(first["fds"]),
        "fds_end": int(last["fds"]),
        "alerts_delivered": delivered,
        "discord_posts": counters.get("discord_posts"),
        "feed_fetches": counters.get("hits"),
        "feed_statuses": counters.get("statuses"),
        "samples": len(samples),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 minute")
    p.add_argument("--smoke", action="store_true", help="a few seconds, 20 feeds (for tests)")
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--feeds", type=int, default=None)
    p.add_argument("--sample", type=float, default=None, help="seconds between samples")
    p.add_argument(
        "--no-followups",
        action="store_true",
        help="prices.followups = [] (alerts are not kept for their price follow-ups)",
    )
    p.add_argument(
        "--trace-memory",
        action="store_true",
        help="tracemalloc: print the allocation sites that grew most (slower, RSS inflated)",
    )
    args = p.parse_args()
    minutes = args.minutes or (0.1 if args.smoke else 1.0 if args.quick else 10.0)
    feeds = args.feeds or (20 if args.smoke else 500)
    sample_s = args.sample or (1.0 if args.smoke else 3.0 if args.quick else 5.0)
    round_s = 2.0 if args.smoke else 10.0
    quiet_logs()
    progress(f"soak: {feeds} feeds for {minutes} min, sampling every {sample_s}s")
    if args.trace_memory:
        tracemalloc.start(12)
    result = soak(minutes, feeds, sample_s, round_s, args.trace_memory, not args.no_followups)
    emit(asyncio.run(result))


if __name__ == "__main__":
    main()
