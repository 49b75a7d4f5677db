"""Soak: the real daemon against 500 loopback feeds for N minutes; is it flat?

A child process serves the feeds (every tenth gains an item each round, one
in four of those new items names Nvidia; the rest answer 304; feed 0 answers
only after 8 s; feed 1 alternates 500 and malformed XML), a fake Discord that
enforces 5 requests / 2 s, and a replayed NVDA price. The daemon runs in this
process, so RSS, open fds and the number of asyncio tasks are its own; they are
sampled every few seconds, with where the memory is: anonymous pages, glibc's
heap (in use + free in its arenas), Python's allocated blocks, follow-ups
waiting, threads and the database size.

"Flat" means: from the end of a 2-minute warm-up (median RSS of the samples
within 30 s of it) to the end (median of the last minute) RSS rose by at most
2 MB, and the least-squares slope of RSS over the second half of the run is at
most 0.1 MB/min. Memory the daemon holds per alert for a bounded time (the
follow-ups' schedule for `prices.followups`, the stories of `dispatch.story_window`)
still grows until that time has passed or its bound is reached; `--followups 60,240
--story-window 240 --warm-up 300` shortens both so that a 10-minute run shows
whether anything else grows.

    python benchmarks/soak.py              # 10 minutes
    python benchmarks/soak.py --quick      # 1 minute
    python benchmarks/soak.py --minutes 30 --feeds 1000

The last line of stdout is one JSON object: rss_start_mb (after the first
round), rss_warm_mb, rss_end_mb, rss_max_mb, rss_rise_after_warm_up_mb,
rss_slope_last_half_mb_per_min (and its standard error), flat, tasks_start and
tasks_end (at rest between poll rounds: the fewest in the first and last minute),
tasks_max, fds_start, fds_end, alerts_delivered, minutes, and more. The object
types that grew most after warm-up go to stderr at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
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
    malloc_info_mb,
    progress,
    pymalloc_stats,
    quiet_logs,
    rss_mb,
    smaps_rollup_kb,
)

from monitor.app.daemon import Daemon, DaemonHooks
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

DEFAULT_FOLLOWUPS = (900.0, 3600.0)  # each news alert with a price: +15 and +60 min


def soak_config(
    tmp: Path,
    farm: FarmProcess,
    feeds: int,
    round_s: float,
    followups: Sequence[float] = DEFAULT_FOLLOWUPS,
    story_window: float | None = None,
) -> Config:
    dispatch = (
        DispatchConfig() if story_window is None else DispatchConfig(story_window=story_window)
    )
    return Config(
        dispatch=dispatch,
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
            followups=list(followups),
        ),
        notifiers=[NotifierConfig(name="discord", kind="discord", url=farm.info["discord_url"])],
        rules=RulesConfig(dir=str(tmp / "rules"), watch=True),
        health=HealthConfig(port=0),
    )


WARM_UP_S = 120.0  # caches and pools fill, the first rounds record every feed's backlog
FLAT_SLOPE_MB_PER_MIN = 0.1  # ~ what a 5-minute half can tell from zero at this noise
FLAT_RISE_MB = 2.0


def slope_per_min(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, value) points, per minute, and its standard error."""
    if len(points) < 3:
        return 0.0, math.inf
    ts = [t / 60 for t, _ in points]
    vs = [v for _, v in points]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    sxx = sum((t - mt) ** 2 for t in ts)
    if sxx == 0:
        return 0.0, math.inf
    slope = sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / sxx
    resid = sum((v - mv - slope * (t - mt)) ** 2 for t, v in zip(ts, vs, strict=True))
    return slope, math.sqrt(resid / (len(ts) - 2) / sxx)


def flatness(samples: list[dict[str, float]], warm_up_s: float) -> dict[str, Any]:
    """What "flat" means here: after the warm-up, RSS rose by at most FLAT_RISE_MB
    (median of the samples around the end of warm-up vs median of the last minute)
    and the least-squares slope of the second half is at most FLAT_SLOPE_MB_PER_MIN.
    The same slope is given for anonymous memory, glibc's heap in use and Python's
    blocks, to tell which of them grows."""
    end_t = samples[-1]["t"]
    near_warm = [s["rss"] for s in samples if abs(s["t"] - warm_up_s) <= 30] or [
        min(samples, key=lambda s: abs(s["t"] - warm_up_s))["rss"]
    ]
    last_min = [s["rss"] for s in samples if s["t"] >= end_t - 60]
    second_half = [s for s in samples if s["t"] >= max(warm_up_s, end_t / 2)] or samples[-3:]
    rss_warm = statistics.median(near_warm)
    rss_end = statistics.median(last_min)
    slopes = {}
    for key in ("rss", "anon", "malloc_in_use", "py_blocks"):
        slope, se = slope_per_min([(s["t"], s[key]) for s in second_half])
        slopes[key] = (slope, se)
    rss_slope, rss_se = slopes["rss"]
    # A step (the allocator taking another arena, a table doubling) reads differently
    # from a trend: the largest rise between two samples after the warm-up, and when.
    after = [s for s in samples if s["t"] >= warm_up_s]
    steps = [(b["rss"] - a["rss"], b["t"]) for a, b in pairwise(after)]
    step, step_at = max(steps, default=(0.0, 0.0))
    return {
        "warm_up_min": round(warm_up_s / 60, 2),
        "rss_warm_mb": round(rss_warm, 1),
        "rss_end_median_mb": round(rss_end, 1),
        "rss_rise_after_warm_up_mb": round(rss_end - rss_warm, 1),
        "rss_slope_last_half_mb_per_min": round(rss_slope, 3),
        "rss_slope_stderr": round(rss_se, 3),
        "rss_largest_step_mb": round(step, 1),
        "rss_largest_step_at_s": round(step_at),
        "anon_slope_last_half_mb_per_min": round(slopes["anon"][0], 3),
        "malloc_in_use_slope_mb_per_min": round(slopes["malloc_in_use"][0], 3),
        "py_blocks_slope_per_min": round(slopes["py_blocks"][0]),
        "flat": bool(rss_end - rss_warm <= FLAT_RISE_MB and rss_slope <= FLAT_SLOPE_MB_PER_MIN),
    }


def memory_sample(proc: psutil.Process, db: Path, daemon: Daemon) -> dict[str, float]:
    """Where this process's memory is: RSS and USS, anonymous pages, glibc's heap
    (in use / free inside its arenas), Python's small-object blocks, and what
    could hold memory (scheduled jobs, threads, the database files)."""
    mb = 1024 * 1024
    rollup = smaps_rollup_kb()
    heap = malloc_info_mb()
    scheduler = getattr(daemon, "_scheduler", None)
    db_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
    traced, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()  # each sample's peak is that of the interval before it
    return {
        "traced": traced / mb,
        "traced_peak": peak / mb,
        "rss": rss_mb(),
        "uss": proc.memory_full_info().uss / mb,
        "anon": rollup.get("Anonymous", 0) / 1024,
        "malloc_in_use": heap.get("in_use", 0.0),
        "malloc_free": heap.get("free", 0.0),
        "py_blocks": sys.getallocatedblocks(),
        "jobs": len(scheduler.get_jobs()) if scheduler is not None else 0,
        "followups": getattr(daemon, "followups_pending", 0),
        "threads": proc.num_threads(),
        "tasks": len(asyncio.all_tasks()),
        "fds": proc.num_fds(),
        "db": db_bytes / mb,
    }


def count_types() -> Counter[str]:
    """Live objects tracked by the garbage collector, by type name."""
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def type_growth(before: Counter[str], after: Counter[str], n: int = 12) -> None:
    """The object types whose count grew most since warm-up, on stderr."""
    if not before:
        return
    grown = sorted(((after[k] - before[k], k) for k in after), reverse=True)[:n]
    progress(f"gc objects: {sum(before.values())} -> {sum(after.values())}; most grown types")
    for diff, name in grown:
        print(f"  {diff:+8d}  {name} ({after[name]})", file=sys.stderr)


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
    followups: Sequence[float] = DEFAULT_FOLLOWUPS,
    story_window: float | None = None,
    warm_up: float = WARM_UP_S,
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
        cfg = soak_config(tmp, farm, feeds, round_s, followups, story_window)
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
        types_before: Counter[str] = Counter()
        arenas_warm: dict[str, float] = {}
        arenas_end: dict[str, float] = {}
        start = time.monotonic()
        end = start + minutes * 60
        warm = start + round_s * 1.5  # the first round (and the first-fetch records) is over
        warm_up_s = min(warm_up, minutes * 60 / 2)
        warmed_up = start + warm_up_s  # growth is counted from here
        try:
            while time.monotonic() < end:
                await asyncio.sleep(min(sample_s, max(0.0, end - time.monotonic())))
                if task.done():
                    task.result()
                    raise RuntimeError("daemon stopped by itself")
                counters = farm.counters()
                s = {
                    "t": time.monotonic() - start,
                    "delivered": delivered,
                    "hits": counters.get("hits", 0),
                    **memory_sample(proc, tmp / "soak.db", daemon),
                }
                samples.append(s)
                if not types_before and time.monotonic() >= warmed_up:
                    types_before = count_types()
                    arenas_warm = pymalloc_stats()
                    if trace:
                        before = tracemalloc.take_snapshot()
                progress(
                    f"t={s['t']:6.0f}s rss={s['rss']:6.1f} anon={s['anon']:6.1f} "
                    f"malloc={s['malloc_in_use']:5.1f}+{s['malloc_free']:4.1f} "
                    f"pyblocks={s['py_blocks'] / 1000:4.0f}k jobs={s['jobs']:4.0f} "
                    f"followups={s['followups']:4.0f} "
                    f"db={s['db']:5.1f} MB tasks={s['tasks']:3.0f} thr={s['threads']:2.0f} "
                    f"fds={s['fds']:4.0f} fetches={s['hits']:6d} alerts={delivered:5d}"
                    + (f" traced={s['traced']:.1f} peak={s['traced_peak']:.1f} MB" if trace else "")
                )
            type_growth(types_before, count_types())
            arenas_end = pymalloc_stats()
            progress(f"pymalloc at warm-up end: {arenas_warm}; at the end: {arenas_end}")
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
    flat = flatness(samples, warm_up_s)
    return {
        "minutes": round(minutes, 2),
        "followups": list(followups),
        "story_window_s": cfg.dispatch.story_window,
        "feeds": feeds,
        "round_s": round_s,
        "rss_boot_mb": round(rss_boot, 1),
        "rss_start_mb": round(first["rss"], 1),
        "rss_end_mb": round(last["rss"], 1),
        "rss_max_mb": round(max(s["rss"] for s in samples), 1),
        "rss_first_half_median_mb": round(early, 1),
        "rss_second_half_median_mb": round(late, 1),
        **flat,
        "uss_start_mb": round(first["uss"], 1),
        "uss_end_mb": round(last["uss"], 1),
        "malloc_in_use_start_mb": round(first["malloc_in_use"], 1),
        "malloc_in_use_end_mb": round(last["malloc_in_use"], 1),
        "malloc_free_end_mb": round(last["malloc_free"], 1),
        "py_blocks_start": int(first["py_blocks"]),
        "py_blocks_end": int(last["py_blocks"]),
        "jobs_end": int(last["jobs"]),
        "threads_end": int(last["threads"]),
        "db_end_mb": round(last["db"], 1),
        "pymalloc_warm": arenas_warm,
        "pymalloc_end": arenas_end,
        # A sample taken during a poll round also counts its feed tasks in flight: the
        # tasks at rest are the fewest seen in the first and in the last minute.
        "tasks_start": int(min(s["tasks"] for s in steady if s["t"] <= steady[0]["t"] + 60)),
        "tasks_end": int(min(s["tasks"] for s in samples if s["t"] >= last["t"] - 60)),
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
        "--followups",
        type=lambda text: [float(x) for x in text.split(",") if x],
        default=list(DEFAULT_FOLLOWUPS),
        help="prices.followups in seconds, comma-separated (default 900,3600): shorter "
        "delays show within a short run where the memory they hold levels off",
    )
    p.add_argument(
        "--story-window",
        type=float,
        default=None,
        help="dispatch.story_window in seconds (default 36 h): with --followups, a window "
        "shorter than the warm-up shows whether anything but those bounded holdings grows",
    )
    p.add_argument("--warm-up", type=float, default=WARM_UP_S, help="seconds (default 120)")
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
    followups = [] if args.no_followups else args.followups
    result = soak(
        minutes,
        feeds,
        sample_s,
        round_s,
        args.trace_memory,
        followups,
        story_window=args.story_window,
        warm_up=args.warm_up,
    )
    emit(asyncio.run(result))


if __name__ == "__main__":
    main()
