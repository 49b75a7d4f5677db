"""kill -9 of one of three `monitor run` processes on one PostgreSQL database.

The feeds it held are taken over by the others once its leases run out (and
not before), every story still reaches Discord, and a story reaches it twice
only when its send was in flight at the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.instances import FeedHost, Fleet, Instance, pg_url, titles_posted, widget_title

__all__ = ["pg_url"]  # fixture used by name below

pytestmark = pytest.mark.postgres

FEEDS = 60
INTERVAL = 1.0
LEASE = 3.0
TICK = 1.0  # the daemon's poll tick: a freed feed waits at most this for a claim
SLACK = 0.6  # scheduling noise on a busy 2-core machine


async def _publish(feeds: FeedHost, titles: list[str], every_s: float) -> None:
    """A story every `every_s` seconds, each on the next feed in turn, until cancelled."""
    for n in itertools.count(1):
        title = widget_title(n)
        feeds.publish([feeds.names[n % len(feeds.names)]], title)
        titles.append(title)
        await asyncio.sleep(every_s)


async def _kill_a_busy_one(fleet: Fleet, prefer_within: float) -> tuple[Instance, float]:
    """SIGKILL an instance while it polls a slow feed, preferably one that also has an
    outbox row claimed (a send in flight). Returns it and the wall time of the kill."""
    by_id = {inst.instance_id: inst for inst in fleet.instances}
    slow = list(fleet.feeds.slow)
    started = time.monotonic()
    while True:
        fleet.check_alive()
        waited = time.monotonic() - started
        if waited > prefer_within + 10:
            raise AssertionError(f"no instance polled a slow feed for {waited:.0f}s")
        # A slow feed's poll lasts long enough to still be in flight a moment later, if
        # its lease is fresh: one taken in the last half second (a lease runs LEASE from
        # the claim) has at least 0.7 s of the poll still to go at the kill.
        polling = await fleet.query(
            "SELECT DISTINCT owner FROM feed_leases WHERE name = ANY($1::text[]) "
            "AND lease_until > now() + make_interval(secs => $2)",
            slow,
            LEASE - 0.5,
        )
        sending = await fleet.query(
            "SELECT DISTINCT lease_owner AS owner FROM outbox WHERE status = 'sending'"
        )
        busy = [r["owner"] for r in polling if r["owner"] in by_id]
        both = [o for o in busy if o in {r["owner"] for r in sending}]
        if both or (busy and waited > prefer_within):
            victim = by_id[(both or busy)[0]]
            return victim, fleet.kill(victim)
        await asyncio.sleep(0.01)


async def test_kill_9_of_one_instance_hands_its_feeds_and_alerts_to_the_others(
    tmp_path: Path, pg_url: str
) -> None:
    titles: list[str] = []
    # Every fifth feed answers slowly, so some polls are always in flight to be cut short.
    slow = {f"f{i:03d}": 1.2 for i in range(0, FEEDS, 5)}
    async with (
        FeedHost(FEEDS, delay_s=0.1, slow=slow) as feeds,
        FakeDiscord(delay_s=0.6, rate=None) as d,
    ):
        fleet = Fleet(tmp_path, pg_url, feeds, d, interval=INTERVAL, lease=LEASE)
        publisher: asyncio.Task[None] | None = None
        try:
            await fleet.start(3)
            await fleet.wait_for(lambda: len({r.feed for r in feeds.requests}) == FEEDS, 20)
            publisher = asyncio.create_task(_publish(feeds, titles, every_s=0.3))
            await fleet.wait_for(lambda: titles_posted(d), 10)
            victim, killed_at = await _kill_a_busy_one(fleet, prefer_within=5.0)
            killed_mono = time.monotonic()
            await victim.proc.wait()
            orphans = await fleet.leases_held(victim.instance_id, killed_at)
            in_flight = {
                r["title"] for r in await fleet.outbox() if r["lease_owner"] == victim.instance_id
            }
            await asyncio.sleep(1.0)
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

            def all_delivered() -> bool:
                posted = titles_posted(d)
                return all(any(t in p for p in posted) for t in titles)

            await fleet.wait_for(all_delivered, LEASE + 15)
            # Every feed, its own included, is polled again after the victim's leases
            # have surely run out: nothing is abandoned.
            resumed_by = killed_at + LEASE + TICK + SLACK

            def none_abandoned() -> bool:
                return all(p[-1].start > resumed_by for p in feeds.by_feed().values())

            await fleet.wait_for(none_abandoned, max(0.0, resumed_by - time.time()) + 6)
        finally:
            if publisher is not None:
                publisher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await publisher
            await fleet.stop()
        survivors = [i for i in fleet.instances if i is not victim]
        assert [i.proc.returncode for i in survivors] == [0, 0], fleet.logs()

    assert orphans, "the victim held no feed at the kill"
    for name, lease_until in orphans.items():
        after = [r for r in feeds.polls(name) if r.start > killed_at + 0.1]
        assert after, f"{name} was never polled after the kill"
        # Nobody touched it while the dead instance's lease stood, and it resumed right after.
        assert after[0].start >= lease_until - 0.05, (name, after[0].start - lease_until)
        assert after[0].start <= lease_until + TICK + SLACK, (name, after[0].start - lease_until)
    for name, polls in feeds.by_feed().items():
        for a, b in itertools.pairwise(polls):
            assert a.end <= b.start, f"{name}: two polls at once ({a} and {b})"

    # No alert lost, and at most one extra copy of what was being sent at the kill.
    counts = Counter(t for p in titles_posted(d) for t in titles if t in p)
    assert set(counts) == set(titles)
    duplicated = {t for t, n in counts.items() if n > 1}
    assert duplicated <= in_flight, (duplicated, in_flight)
    assert all(n <= 2 for n in counts.values()), counts
    first_post = {}
    for rec in d.posts():
        for t in titles:
            if t in str(rec.body):
                first_post.setdefault(t, rec.at)
    assert all(first_post[t] < killed_mono for t in duplicated)
    outbox = await fleet.outbox()
    assert {r["status"] for r in outbox} == {"sent"}
    assert len(outbox) == len(titles)
