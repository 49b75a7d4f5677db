"""A separate OS process that works on a store, for the multi-process tests.

`spawn(...)` starts one from a test, `start_together(...)` releases a group at
once, and `results(...)` collects what each printed.

    python -m tests.fakes.store_worker claim-outbox URL OWNER
    python -m tests.fakes.store_worker claim-feeds  URL OWNER SECONDS N_FEEDS
    python -m tests.fakes.store_worker open         URL OWNER
    python -m tests.fakes.store_worker write        URL FIRST

All but `write` print `ready` once set up and wait for a `go` line on stdin, so
that a group starts together however slowly each one started; they end with one
JSON line. `write` commits polls without pause, printing `committed K` after
each commit returns, until killed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from itertools import count
from pathlib import Path
from typing import Any

from monitor.store import open_store
from tests.fakes.stores import T0, entry, feed, seen, story

REPO = Path(__file__).resolve().parents[2]
ITEMS_PER_POLL = 40
ALERTS_PER_POLL = 2


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start a worker process; its stdout and stderr are pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.store_worker", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def start_together(procs: list[subprocess.Popen[str]]) -> None:
    """Wait until every worker is ready, then tell them all to go."""
    for p in procs:
        assert p.stdout is not None
        line = await asyncio.to_thread(p.stdout.readline)
        assert line.strip() == "ready", line or (p.stderr.read() if p.stderr else "")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


async def results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for each worker to exit 0 and return the JSON line it printed last."""
    out: list[dict[str, Any]] = []
    for p in procs:
        stdout, stderr = await asyncio.to_thread(p.communicate, timeout=30)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def poll_name(k: int) -> str:
    return f"feed-{k:05d}"


async def ready_set_go() -> None:
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected go, got {line!r}")


async def claim_outbox(url: str, owner: str) -> None:
    claimed: list[int] = []
    async with open_store(url, instance_id=owner) as s:
        await ready_set_go()
        while batch := await s.claim_outbox(owner, T0, 3, 300):
            for e in batch:
                claimed.append(e.id)
                await s.mark_sent(e.id, T0, owner)
    print(json.dumps({"owner": owner, "claimed": claimed}), flush=True)


async def claim_feeds(url: str, owner: str, seconds: float, n: int) -> None:
    names = [f"feed-{i}" for i in range(n)]
    held: list[tuple[str, float, float]] = []
    async with open_store(url, instance_id=owner) as s:
        await ready_set_go()
        deadline = time.time() + seconds
        while time.time() < deadline:
            for name in await s.claim_feeds(owner, names, T0, 300):
                got = time.time()
                await s.commit_poll(feed(name), [seen(name, f"{owner}-{got}")], [], [])
                held.append((name, got, time.time()))
                await s.release_feed(owner, name)
            await asyncio.sleep(0.001)
    print(json.dumps({"owner": owner, "held": held}), flush=True)


async def write(url: str, first: int) -> None:
    async with open_store(url, instance_id="writer") as s:
        for k in count(first):
            name = poll_name(k)
            await s.commit_poll(
                feed(name, items_total=k, initialized=True),
                [seen(name, f"item-{i}", f"hash-{k}-{i}") for i in range(ITEMS_PER_POLL)],
                [story(f"story-{k}")],
                [entry(f"dest-{d}", f"story-{k}") for d in range(ALERTS_PER_POLL)],
            )
            print(f"committed {k}", flush=True)


async def open_at(url: str, owner: str) -> None:
    s = open_store(url, instance_id=owner)
    await ready_set_go()
    async with s:
        version = await s.schema_version()
    print(json.dumps({"owner": owner, "version": version}), flush=True)


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    if mode == "claim-outbox":
        asyncio.run(claim_outbox(url, rest[0]))
    elif mode == "claim-feeds":
        asyncio.run(claim_feeds(url, rest[0], float(rest[1]), int(rest[2])))
    elif mode == "open":
        asyncio.run(open_at(url, rest[0]))
    elif mode == "write":
        asyncio.run(write(url, int(rest[0])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
