"""Ingest throughput of 1, 2 and 3 `monitor run` processes sharing one PostgreSQL database.

A local server (its own process, 127.0.0.1) serves N feeds of `--items` items
with ETags. For each instance count a fresh schema is made, the processes are
started on one config file, and the server holds every request until all of
them are up; then the gate opens and the cold round is timed: from the gate
to the last feed's first successful poll as recorded in the store (`feeds.
last_success`), i.e. fetch, parse, dedupe and commit of every feed once.
Feeds poll hourly, so no feed is polled twice within a round.

    python benchmarks/instances.py            # 400 feeds of 30 items, 1, 2 and 3 instances,
                                              # five rounds each, the median round reported
    python benchmarks/instances.py --quick    # under a minute: 150 feeds, three rounds each

Progress goes to stderr; the last line of stdout is one JSON object. CPU
seconds used by the instances and by the feed server are reported beside the
wall time: on a machine with two cores, three instances plus the server and
PostgreSQL compete for the same two, so `scaling_3` is bounded by the cores,
not by the leases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.store import split_schema  # noqa: E402

PG_URL = os.environ.get("MONITOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WORDS = [
    "엔비디아", "딥시크", "HBM", "반도체", "Nvidia", "Blackwell",
    "export", "controls", "SK하이닉스", "삼성전자", "TSMC",
]  # fmt: skip


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def feed_body(feed: int, items: int) -> bytes:
    rnd = random.Random(feed)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
        f"<title>feed {feed}</title><link>https://news.example.com/</link>",
    ]
    for i in range(items):
        words = " ".join(rnd.choice(WORDS) for _ in range(50))
        parts.append(
            f"<item><title>피드 {feed} 기사 {i}: {' '.join(rnd.sample(WORDS, 5))}</title>"
            f"<link>https://news.example.com/{feed}/{i}</link>"
            f"<guid isPermaLink='false'>f{feed}-i{i}</guid>"
            f"<description><![CDATA[<p>{words}</p>]]></description>"
            f"<pubDate>Thu, 30 Jan 2025 {i % 24:02d}:{i % 60:02d}:00 +0900</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def serve(count: int, items: int, conn: Any) -> None:
    """The feed server: holds every request until POST /open; reports its CPU via GET /cpu."""
    bodies = [feed_body(f, items) for f in range(count)]

    async def main() -> None:
        gate = asyncio.Event()

        async def feed(request: web.Request) -> web.Response:
            await gate.wait()
            f = int(request.match_info["n"])
            etag = f'"{f}"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(
                body=bodies[f], headers={"ETag": etag, "Content-Type": "application/rss+xml"}
            )

        async def open_gate(request: web.Request) -> web.Response:
            gate.set()
            return web.Response(text="open")

        async def close_gate(request: web.Request) -> web.Response:
            gate.clear()
            return web.Response(text="closed")

        async def cpu(request: web.Request) -> web.Response:
            return web.Response(text=str(time.process_time()))

        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        app.router.add_post("/open", open_gate)
        app.router.add_post("/close", close_gate)
        app.router.add_get("/cpu", cpu)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process on this machine, by pid."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name"]):
        if (p.info["name"] or "").startswith("postgres"):
            try:
                out[p.pid] = sum(p.cpu_times()[:2])
            except psutil.Error:
                continue
    return out


def write_config(path: Path, store_url: str, base: str, count: int) -> None:
    lines = [
        "[store]",
        f'url = "{store_url}"',
        "",
        "[fetch]",
        "allow_private_networks = true",
        # One loopback host stands for many real ones here.
        "per_host_concurrency = 16",
        "",
        "[prices]",
        "enabled = false",
        "",
        "[health]",
        "enabled = false",
        "",
        "[[notifiers]]",
        'name = "console"',
        'kind = "console"',
        "",
    ]
    for i in range(count):
        lines += ["[[feeds]]", f'name = "f{i}"', f'url = "{base}/feed/{i}.xml"', 'interval = "1h"']
        lines += ["adaptive = false", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


async def pg(store_url: str, sql: str) -> list[asyncpg.Record]:
    dsn, schema = split_schema(store_url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def drop(store_url: str) -> None:
    dsn, schema = split_schema(store_url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def spawn(config: Path, log: Path) -> asyncio.subprocess.Process:
    """`monitor run --config config`, its output in `log`."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip


async def one_round(base: str, count: int, instances: int, tmp: Path) -> dict[str, Any]:
    import aiohttp

    store_url = f"{PG_URL}?schema=bench_{uuid.uuid4().hex[:10]}"
    config = tmp / f"config-{instances}.toml"
    write_config(config, store_url, base, count)
    async with aiohttp.ClientSession() as http:
        await http.post(f"{base}/close")
        logs = [tmp / f"instance-{instances}-{i}.log" for i in range(instances)]
        procs = [await spawn(config, log) for log in logs]
        try:
            deadline = time.monotonic() + 60
            while not all("daemon_started" in log.read_text(errors="replace") for log in logs):
                if time.monotonic() > deadline or any(p.returncode is not None for p in procs):
                    raise RuntimeError("an instance did not start:\n" + logs[0].read_text())
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # every instance has made its first claim and waits
            ps = [psutil.Process(p.pid) for p in procs]
            cpu0 = sum(sum(p.cpu_times()[:2]) for p in ps)
            async with http.get(f"{base}/cpu") as r:
                server_cpu0 = float(await r.text())
            pg0 = postgres_cpu()
            gate = time.time()
            await http.post(f"{base}/open")
            while True:
                [row] = await pg(store_url, "SELECT COUNT(*) AS n FROM feeds WHERE initialized")
                if row["n"] >= count:
                    break
                if time.time() - gate > 600:
                    raise RuntimeError(f"only {row['n']} of {count} feeds polled in 600 s")
                await asyncio.sleep(0.02)
            [row] = await pg(store_url, "SELECT MAX(last_success) AS t FROM feeds")
            elapsed = row["t"].timestamp() - gate
            cpu = sum(sum(p.cpu_times()[:2]) for p in ps) - cpu0
            async with http.get(f"{base}/cpu") as r:
                server_cpu = float(await r.text()) - server_cpu0
            pg_cpu = sum(t - pg0.get(pid, 0.0) for pid, t in postgres_cpu().items())
            per = [
                int(r["n"])
                for r in await pg(
                    store_url,
                    "SELECT COUNT(*) AS n FROM seen_items GROUP BY feed HAVING COUNT(*) > 0",
                )
            ]
            assert len(per) == count, f"{len(per)} of {count} feeds stored their items"
        finally:
            for p in procs:
                if p.returncode is None:
                    p.terminate()
            for p in procs:
                await asyncio.wait_for(p.wait(), 30)
            await drop(store_url)
    shares = [
        log.read_text(errors="replace").count("feed_polled") for log in logs
    ]  # feeds each instance took
    return {
        "instances": instances,
        "seconds": elapsed,
        "feeds_per_s": count / elapsed,
        "instance_cpu_s": cpu,
        "server_cpu_s": server_cpu,
        "postgres_cpu_s": pg_cpu,
        "feeds_by_instance": shares,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    parser.add_argument("--feeds", type=int, default=None, help="default 400 (150 with --quick)")
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=None, help="rounds per count (5; 3 quick)")
    args = parser.parse_args()
    count = args.feeds or (150 if args.quick else 400)
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    args.repeat = args.repeat or (3 if args.quick else 5)
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(count, args.items, send), daemon=True)
    server.start()
    results: dict[int, dict[str, Any]] = {}
    try:
        base = f"http://127.0.0.1:{recv.recv()}"
        with tempfile.TemporaryDirectory() as d:
            for n in (1, 2, 3):
                rounds = [
                    asyncio.run(one_round(base, count, n, Path(d))) for _ in range(args.repeat)
                ]
                # The round of median speed stands for this instance count.
                rounds.sort(key=lambda r: r["feeds_per_s"])
                results[n] = r = rounds[len(rounds) // 2]
                r["all_feeds_per_s"] = [round(x["feeds_per_s"], 1) for x in rounds]
                progress(
                    f"{n} instance(s): {count} feeds in {r['seconds']:.2f}s = "
                    f"{r['feeds_per_s']:.0f} feeds/s; instances' CPU {r['instance_cpu_s']:.1f}s, "
                    f"server CPU {r['server_cpu_s']:.1f}s, "
                    f"PostgreSQL CPU {r['postgres_cpu_s']:.1f}s; "
                    f"feeds by instance {r['feeds_by_instance']}; all rounds {r['all_feeds_per_s']}"
                )
    finally:
        server.terminate()
        server.join(5)
    one = results[1]["feeds_per_s"]
    summary = {
        "feeds": count,
        "items_per_feed": args.items,
        "cpu_cores": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "instances_1_feeds_per_s": round(one, 1),
        "instances_2_feeds_per_s": round(results[2]["feeds_per_s"], 1),
        "instances_3_feeds_per_s": round(results[3]["feeds_per_s"], 1),
        "scaling_2": round(results[2]["feeds_per_s"] / one, 2),
        "scaling_3": round(results[3]["feeds_per_s"] / one, 2),
        "instance_cpu_s": {n: round(r["instance_cpu_s"], 2) for n, r in results.items()},
        "server_cpu_s": {n: round(r["server_cpu_s"], 2) for n, r in results.items()},
        "postgres_cpu_s": {n: round(r["postgres_cpu_s"], 2) for n, r in results.items()},
        "feeds_by_instance": {n: r["feeds_by_instance"] for n, r in results.items()},
        "rounds_feeds_per_s": {n: r["all_feeds_per_s"] for n, r in results.items()},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
