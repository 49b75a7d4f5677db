"""Store throughput on SQLite and PostgreSQL.

    python benchmarks/store.py [--quick] [--backend sqlite|postgres|both] [--pg-url URL]

Measures, per backend:
- `commit_poll` of 50 new items (plus one story and one alert) for each of 500
  feeds: polls/s, items/s, median and p95 latency of one commit;
- `known_items` for those 50 ids on every feed (what each later poll asks);
- the outbox: claim (batches of 20) + `mark_sent` for every row, by one
  dispatcher and by four concurrent ones.

Human-readable lines go to stderr; the figures are the last stdout line, as JSON.
SQLite runs on a temporary file; PostgreSQL in a throwaway schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from monitor.core.models import Alert
from monitor.ports import FeedState, NewOutboxEntry, SeenItem, StoryRecord
from monitor.store import open_store, split_schema
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore

T0 = datetime(2025, 1, 27, 14, 30, tzinfo=UTC)
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
AnyStore = SqliteStore | PostgresStore


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def poll(feed_no: int, items: int) -> tuple[FeedState, list[SeenItem], StoryRecord, NewOutboxEntry]:
    name = f"feed-{feed_no:04d}"
    state = FeedState(name=name, url=f"https://news.example/{name}.xml", initialized=True)
    seen = [
        SeenItem(name, f"{name}/item-{i}", f"hash-{i}", T0, T0, f"story-{feed_no}-{i}")
        for i in range(items)
    ]
    key = f"story-{feed_no}"
    story = StoryRecord(key, f"엔비디아 딥시크 {feed_no}", T0, ({"feed": name},), ("16.97",))
    alert = Alert(kind="news", key=key, title=f"엔비디아 16.97% 급락 {feed_no}", created_at=T0)
    return state, seen, story, NewOutboxEntry("desk", alert, key)


async def bench_polls(s: AnyStore, feeds: int, items: int) -> dict[str, Any]:
    latencies: list[float] = []
    started = time.perf_counter()
    for n in range(feeds):
        state, seen, story, entry = poll(n, items)
        t = time.perf_counter()
        await s.commit_poll(state, seen, [story], [entry])
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - started

    lookups: list[float] = []
    for n in range(feeds):
        name = f"feed-{n:04d}"
        ids = [f"{name}/item-{i}" for i in range(items)]
        t = time.perf_counter()
        known = await s.known_items(name, ids)
        lookups.append(time.perf_counter() - t)
        assert len(known) == items
    return {
        "commit_polls": feeds,
        "items_per_poll": items,
        "commit_s": round(total, 3),
        "polls_per_s": round(feeds / total, 1),
        "items_per_s": round(feeds * items / total, 1),
        "commit_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "commit_p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
        "known_items_p50_ms": round(statistics.median(lookups) * 1000, 2),
        "known_items_p95_ms": round(percentile(lookups, 0.95) * 1000, 2),
    }


async def drain(stores: list[AnyStore], batch: int) -> tuple[int, float]:
    claimed: list[int] = []

    async def worker(s: AnyStore, owner: str) -> None:
        while rows := await s.claim_outbox(owner, T0, batch, 300):
            for r in rows:
                await s.mark_sent(r.id, T0, None)
            claimed.extend(r.id for r in rows)

    started = time.perf_counter()
    await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate(stores)))
    elapsed = time.perf_counter() - started
    assert len(claimed) == len(set(claimed)), "a row was claimed twice"
    return len(claimed), elapsed


async def enqueue(s: AnyStore, rows: int, tag: str) -> None:
    chunk = 500
    for start in range(0, rows, chunk):
        entries = [
            NewOutboxEntry(
                "desk",
                Alert(kind="news", key=f"{tag}-{i}", title=f"alert {i}", created_at=T0),
                f"{tag}-{i}",
            )
            for i in range(start, min(rows, start + chunk))
        ]
        await s.commit_poll(FeedState(name=f"outbox-{tag}"), [], [], entries)


async def bench_outbox(url: str, s: AnyStore, rows: int) -> dict[str, Any]:
    await s.claim_outbox("pre", T0, 10**9, 300)  # the poll benchmark's alerts: out of the way
    for row in await s.list_outbox(("sending",)):
        await s.mark_sent(row.id, T0, None)
    await enqueue(s, rows, "one")
    n1, t1 = await drain([s], 20)
    await enqueue(s, rows, "four")
    others = [open_store(url, instance_id=f"bench-{i}") for i in range(4)]
    for o in others:
        await o.open()
    try:
        n4, t4 = await drain(others, 20)
    finally:
        for o in others:
            await o.close()
    return {
        "outbox_rows": rows,
        "outbox_1_worker_rows_per_s": round(n1 / t1, 1),
        "outbox_4_workers_rows_per_s": round(n4 / t4, 1),
    }


async def run_backend(url: str, feeds: int, items: int, rows: int) -> dict[str, Any]:
    async with open_store(url, instance_id="bench") as s:
        figures = await bench_polls(s, feeds, items)
        figures |= await bench_outbox(url, s, rows)
    return figures


async def postgres_up(url: str) -> bool:
    try:
        conn = await asyncpg.connect(split_schema(url)[0], timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="50 feeds and 500 outbox rows")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    args = ap.parse_args(argv)
    feeds, items, rows = (50, 50, 500) if args.quick else (500, 50, 5000)

    result: dict[str, Any] = {"quick": args.quick}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{Path(d) / 'bench.db'}"
            result["sqlite"] = await run_backend(url, feeds, items, rows)
        say(f"sqlite: {result['sqlite']}")
    if args.backend in ("postgres", "both"):
        if not await postgres_up(args.pg_url):
            say("postgres: not answering, skipped")
            result["postgres"] = None
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            url = f"{args.pg_url}{'&' if '?' in args.pg_url else '?'}schema={schema}"
            try:
                result["postgres"] = await run_backend(url, feeds, items, rows)
            finally:
                conn = await asyncpg.connect(split_schema(args.pg_url)[0])
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
            say(f"postgres: {result['postgres']}")
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
