"""Memory: RSS of the daemon process with 1,000 feeds and 1,000,000 seen items.

The store (SQLite) is filled beforehand with 1,000 feeds' state and 1,000,000
seen items through the store's own `commit_poll`. Then `python -m monitor run`
is started as a child process against 1,000 loopback feeds (20 items each,
served by this process, with a fake Discord and a replayed Yahoo), and its RSS
is sampled with psutil once every feed has been polled. For comparison the RSS
of a bare interpreter that only imports the daemon module is measured too.

    python benchmarks/memory.py            # 1,000 feeds, 1,000,000 seen items
    python benchmarks/memory.py --quick    # the same, under a minute
    python benchmarks/memory.py --feeds 2000 --items 3000000

The last line of stdout is one JSON object: rss_mb (the median of the samples
after the first poll round), rss_max_mb, feeds, seen_items, baseline_rss_mb
(`import monitor.app.daemon` alone), baseline_monitor_rss_mb (`import monitor`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPLAY_START,
    ROOT,
    FeedFarm,
    baseline_rss_mb,
    emit,
    farm_name,
    progress,
    quiet_logs,
    rss_mb,
)
from aiohttp import web

from monitor.clock import OffsetClock, SystemClock
from monitor.demo.price_server import make_yahoo_app, nvda_2025_01_27
from monitor.ports import FeedState, SeenItem
from monitor.store import open_store
from tests.fakes.discord_server import FakeDiscord


async def fill_store(url: str, farm: FeedFarm, feeds: int, items: int) -> float:
    """Feed states for every feed and `items` seen items spread over them; seconds taken."""
    started = time.monotonic()
    store = open_store(url, instance_id="fill", clock=SystemClock())
    await store.open()
    try:
        per_feed = max(1, items // feeds)
        now = datetime.now(UTC)
        written = 0
        for i in range(feeds):
            name = farm_name(i)
            count = per_feed if i < feeds - 1 else items - written
            batch = [
                SeenItem(
                    feed=name,
                    item_id=f"https://news.example.com/{name}/article/{j:07d}",
                    content_hash=hashlib.blake2b(f"{name}{j}".encode(), digest_size=16).hexdigest(),
                    first_seen=now - timedelta(days=j % 30),
                    published=now - timedelta(days=j % 30, hours=1),
                )
                for j in range(count)
            ]
            # Not yet initialised: the daemon's first fetch records the live items silently.
            state = FeedState(name=name, url=farm.url(name))
            await store.commit_poll(state, batch, [], [])
            written += count
            if i % 100 == 99:
                progress(f"  store: {i + 1} feeds, {written:,} seen items")
    finally:
        await store.close()
    return time.monotonic() - started


def write_config(tmp: Path, farm: FeedFarm, feeds: int, discord_url: str, yahoo_url: str) -> Path:
    lines = [
        "[store]",
        f'url = "sqlite:///{tmp / "state.db"}"',
        "[fetch]",
        "allow_private_networks = true",
        # Every feed is on one loopback port here; in life they are on many hosts.
        "per_host_concurrency = 16",
        "[prices]",
        'symbols = ["NVDA"]',
        f'yahoo_base_url = "{yahoo_url}"',
        "[health]",
        "port = 0",
        "[rules]",
        "watch = true",
        "[[notifiers]]",
        'name = "discord"',
        'kind = "discord"',
        f'url = "{discord_url}"',
    ]
    for i in range(feeds):
        name = farm_name(i)
        lines += [
            "[[feeds]]",
            f'name = "{name}"',
            f'url = "{farm.url(name)}"',
            'interval = "5m"',
            'lang = "ko"' if i % 2 else 'lang = "en"',
            'timezone = "Asia/Seoul"' if i % 2 else 'timezone = "America/New_York"',
        ]
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def measure(feeds: int, items: int, settle_s: float, samples: int) -> dict[str, Any]:
    clock = OffsetClock(REPLAY_START)
    farm = FeedFarm(clock.now)
    for i in range(feeds):
        farm.add(farm_name(i), items=20, seed=i)
    await farm.start()
    discord = FakeDiscord()
    await discord.__aenter__()
    yahoo = web.AppRunner(make_yahoo_app([nvda_2025_01_27()], clock), access_log=None)
    await yahoo.setup()
    await web.TCPSite(yahoo, "127.0.0.1", 0).start()
    yahoo_url = f"http://127.0.0.1:{yahoo.addresses[0][1]}"
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            progress(f"filling the store: {feeds} feeds, {items:,} seen items")
            took = await fill_store(f"sqlite:///{tmp / 'state.db'}", farm, feeds, items)
            db_mb = sum(p.stat().st_size for p in tmp.glob("state.db*")) / (1024 * 1024)
            progress(f"store filled in {took:.1f}s ({db_mb:.0f} MB on disk)")
            config = write_config(tmp, farm, feeds, discord.url, yahoo_url)
            log = (tmp / "daemon.log").open("wb")
            cmd = [sys.executable, "-m", "monitor", "--log-level", "WARNING", "run"]
            cmd += ["--config", str(config)]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            try:
                started = time.monotonic()
                while farm.polled() < feeds:
                    if proc.poll() is not None:
                        raise RuntimeError(f"daemon exited with {proc.returncode}")
                    if time.monotonic() - started > 120:
                        raise RuntimeError(f"only {farm.polled()} of {feeds} feeds polled")
                    await asyncio.sleep(0.2)
                progress(f"all {feeds} feeds polled after {time.monotonic() - started:.1f}s")
                await asyncio.sleep(settle_s)  # the last commits land
                values = []
                for _ in range(samples):
                    values.append(rss_mb(proc.pid))
                    await asyncio.sleep(0.5)
                progress(f"daemon RSS samples (MB): {' '.join(f'{v:.1f}' for v in values)}")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.close()
    finally:
        await yahoo.cleanup()
        await discord.__aexit__()
        await farm.stop()
    return {
        "rss_mb": round(statistics.median(values), 1),
        "rss_max_mb": round(max(values), 1),
        "feeds": feeds,
        "seen_items": items,
        "store_mb": round(db_mb, 1),
        "fill_s": round(took, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer RSS samples, under a minute")
    p.add_argument("--smoke", action="store_true", help="20 feeds, 2,000 items (for tests)")
    p.add_argument("--feeds", type=int, default=None)
    p.add_argument("--items", type=int, default=None)
    args = p.parse_args()
    feeds = args.feeds or (20 if args.smoke else 1000)
    items = args.items or (2000 if args.smoke else 1_000_000)
    settle_s, samples = (0.5, 2) if args.smoke else (2.0, 6) if args.quick else (5.0, 20)
    quiet_logs()
    baseline = baseline_rss_mb("monitor.app.daemon")
    bare = baseline_rss_mb("monitor")
    progress(f"baseline: import monitor {bare:.1f} MB, import monitor.app.daemon {baseline:.1f} MB")
    result = asyncio.run(measure(feeds, items, settle_s, samples))
    result["baseline_rss_mb"] = round(baseline, 1)
    result["baseline_monitor_rss_mb"] = round(bare, 1)
    result["target_met"] = result["rss_max_mb"] <= 150
    emit(result)


if __name__ == "__main__":
    main()
