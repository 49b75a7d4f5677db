"""Three `monitor run` processes on one PostgreSQL database share 300 feeds.

Each feed is polled by one instance at a time and at its interval, and a story
carried by three feeds (possibly polled by three instances at once) alerts once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.instances import FeedHost, Fleet, pg_url, titles_posted, widget_title

__all__ = ["pg_url"]  # fixture used by name below

pytestmark = pytest.mark.postgres

FEEDS = 300
INTERVAL = 2.0
# A due feed waits for the next poll tick (a quarter second) and for its turn among the
# due ones (300 feeds on 2 cores).
LATE_TOLERANCE = 2.5


async def test_three_instances_poll_each_feed_alone_and_on_time_and_alert_once(
    tmp_path: Path, pg_url: str
) -> None:
    async with FeedHost(FEEDS) as feeds, FakeDiscord(rate=None) as discord:
        fleet = Fleet(tmp_path, pg_url, feeds, discord, interval=INTERVAL, lease=3.0)
        try:
            await fleet.start(3)
            took = await fleet.wait_for(lambda: len({r.feed for r in feeds.requests}) == FEEDS, 20)
            print(f"all feeds polled after {took:.1f}s")
            began = time.time()
            # A wire story in three feeds, under three outlet styles.
            story = widget_title(7)
            carriers = ["f010", "f150", "f290"]
            feeds.publish(carriers, [f"[속보] {story}", story, f"{story} - 연합뉴스"])
            await fleet.wait_for(lambda: titles_posted(discord), 10)
            # Run on for a few more intervals, so every feed has several polls to compare.
            await fleet.wait_for(lambda: time.time() - began > 3 * INTERVAL, 10)
        finally:
            await fleet.stop()

        assert [i.proc.returncode for i in fleet.instances] == [0, 0, 0], fleet.logs()
        assert [t for t in titles_posted(discord) if story in t] == [f"[속보] {story}"]
        assert len(discord.posts()) == 1

        by_feed = feeds.by_feed()
        gaps: list[float] = []
        for name, polls in by_feed.items():
            assert polls, f"{name} was never polled"
            for a, b in itertools.pairwise(polls):
                assert a.end <= b.start, f"{name}: two polls at once ({a} and {b})"
                gaps.append(b.start - a.start)
        print(f"gaps: min {min(gaps):.2f} max {max(gaps):.2f} n {len(gaps)}")
        assert gaps, "no feed was polled twice"
        assert min(gaps) >= INTERVAL - 0.05, f"a feed polled early: {min(gaps):.2f}s apart"
        assert max(gaps) <= INTERVAL + LATE_TOLERANCE, f"a feed polled late: {max(gaps):.2f}s"
        # The work was shared, and no body was fetched twice: every feed's first poll
        # and each carrier's poll after the story came were done once, by someone.
        fetched = [fleet.feeds_fetched(inst) for inst in fleet.instances]
        print("fetched per instance", [len(f) for f in fetched])
        assert all(fetched), [len(f) for f in fetched]
        assert sorted(itertools.chain(*fetched)) == sorted(feeds.names + carriers)


async def test_two_runs_of_one_config_deliver_each_new_story_once(
    tmp_path: Path, pg_url: str
) -> None:
    """The same config file twice (default instance ids, host:pid): each new story is
    posted once, whichever instance polls its feed, and wire copies join it."""
    async with FeedHost(20) as feeds, FakeDiscord(rate=None) as discord:
        fleet = Fleet(tmp_path, pg_url, feeds, discord, interval=1.0, lease=3.0)
        try:
            first, second = await fleet.start(2)
            assert first.instance_id != second.instance_id
            await fleet.wait_for(lambda: len({r.feed for r in feeds.requests}) == 20, 15)
            stories = [widget_title(n) for n in range(1, 9)]
            for n, story in enumerate(stories):
                feeds.publish([feeds.names[n]], story)
                await asyncio.sleep(0.2)
            # A copy of the first story on two more feeds, under other outlets' styles.
            feeds.publish(feeds.names[10:12], [f"[단독] {stories[0]}", f"{stories[0]} - 뉴스1"])

            def delivered() -> bool:
                return all(any(s in t for t in titles_posted(discord)) for s in stories)

            await fleet.wait_for(delivered, 15)
            seen = len(feeds.requests)
            # A few more polls of every feed, to give any duplicate the chance to show.
            await fleet.wait_for(lambda: len(feeds.requests) > seen + 2 * 20, 10)
        finally:
            await fleet.stop()

    assert [i.proc.returncode for i in fleet.instances] == [0, 0], fleet.logs()
    posted = titles_posted(discord)
    assert len(posted) == len(stories), posted
    assert all(sum(s in t for t in posted) == 1 for s in stories), posted
    assert {r["status"] for r in await fleet.outbox()} <= {"sent"}
