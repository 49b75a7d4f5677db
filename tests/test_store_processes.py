"""Several OS processes on one store: exclusive leases, and crash safety with SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
from pathlib import Path

from monitor.store import open_store
from tests.fakes.store_worker import (
    ALERTS_PER_POLL,
    ITEMS_PER_POLL,
    poll_name,
    results,
    spawn,
    start_together,
)
from tests.fakes.stores import T0, entry, feed, store_url

__all__ = ["store_url"]


async def test_three_processes_never_send_one_outbox_row_twice(store_url: str) -> None:
    async with open_store(store_url) as s:
        ids = await s.commit_poll(feed("f"), [], [], [entry("desk", f"k{i}") for i in range(600)])
    procs = [spawn("claim-outbox", store_url, f"proc-{i}") for i in range(3)]
    await start_together(procs)
    got = await results(procs)

    claimed = [i for r in got for i in r["claimed"]]
    assert sorted(claimed) == ids  # each row claimed by exactly one process, none lost
    assert sum(1 for r in got if r["claimed"]) >= 2, "the processes did not overlap"
    async with open_store(store_url) as s:
        sent = await s.list_outbox(("sent",))
    owner_of = {i: r["owner"] for r in got for i in r["claimed"]}
    assert all(e.message_ref == owner_of[e.id] and e.attempts == 1 for e in sent)


async def test_three_processes_never_poll_one_feed_at_once(store_url: str) -> None:
    async with open_store(store_url):
        pass  # migrate once up front, so the children's startup is comparable
    procs = [spawn("claim-feeds", store_url, f"proc-{i}", "0.5", "6") for i in range(3)]
    await start_together(procs)
    got = await results(procs)

    by_feed: dict[str, list[tuple[float, float, str]]] = {}
    for r in got:
        for name, began, ended in r["held"]:
            by_feed.setdefault(name, []).append((began, ended, r["owner"]))
    assert len(by_feed) == 6
    assert all(r["held"] for r in got), "a process never got a feed"
    for name, spans in by_feed.items():
        spans.sort()
        for (_, end_a, owner_a), (begin_b, _, owner_b) in itertools.pairwise(spans):
            assert end_a <= begin_b, f"{name} held by {owner_a} and {owner_b} at once"


async def test_a_writer_killed_mid_commit_leaves_only_whole_polls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash' / 'monitor.db'}"
    reported: set[int] = set()
    for round_no in range(3):
        first = round_no * 100_000  # a fresh range: the poll in flight may or may not land
        p = spawn("write", url, str(first))
        assert p.stdout is not None
        seen_this_round = 0
        while seen_this_round < 12 + 5 * round_no:
            line = await asyncio.to_thread(p.stdout.readline)
            assert line, p.stderr.read() if p.stderr else "writer died"
            reported.add(int(line.split()[1]))
            seen_this_round += 1
        os.kill(p.pid, signal.SIGKILL)
        await asyncio.to_thread(p.wait, 10)
        assert p.returncode == -signal.SIGKILL
        for pipe in (p.stdin, p.stdout, p.stderr):
            if pipe is not None:
                pipe.close()

    async with open_store(url) as s:
        states = {st.name: st for st in await s.load_feed_states()}
        stories = {st.key for st in await s.recent_stories(T0)}
        outbox: dict[str, int] = {}
        for e in await s.list_outbox(("pending",)):
            outbox[e.dedupe_key] = outbox.get(e.dedupe_key, 0) + 1
        present = {st.items_total for st in states.values()}
        assert reported <= present, "a reported commit is missing"
        assert len(present - reported) <= 3  # at most the one in flight per kill
        for k in present:
            name = poll_name(k)
            known = await s.known_items(name, [f"item-{i}" for i in range(ITEMS_PER_POLL)])
            assert known == {f"item-{i}": f"hash-{k}-{i}" for i in range(ITEMS_PER_POLL)}, name
            assert f"story-{k}" in stories
            assert outbox.get(f"story-{k}") == ALERTS_PER_POLL
        assert len(stories) == len(present) and len(outbox) == len(present)

    conn = sqlite3.connect(tmp_path / "crash" / "monitor.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
