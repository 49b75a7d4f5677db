"""Leasing feeds a batch at a time, which is what lets several instances share the work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from monitor.app.poll import Poller
from monitor.clock import SystemClock
from monitor.config import Config, FeedConfig, FetchConfig, StoreConfig
from monitor.store import open_store
from tests.fakes.instances import FeedHost
from tests.fakes.stores import T0, feed, minutes, store, store_url

__all__ = ["store", "store_url"]  # fixtures used by name below


async def test_a_limited_claim_takes_the_longest_overdue_first_and_leaves_the_rest(
    store,
) -> None:
    await store.save_feed_state(feed("due-1m", next_poll_at=T0 - minutes(1)))
    await store.save_feed_state(feed("due-9m", next_poll_at=T0 - minutes(9)))
    await store.save_feed_state(feed("due-5m", next_poll_at=T0 - minutes(5)))
    await store.save_feed_state(feed("later", next_poll_at=T0 + minutes(5)))
    names = ["due-1m", "due-5m", "due-9m", "later", "never-polled"]

    assert await store.claim_feeds("A", names, T0, 60, limit=2) == ["due-9m", "never-polled"]
    assert await store.claim_feeds("B", names, T0, 60, limit=1) == ["due-5m"]
    assert await store.claim_feeds("C", names, T0, 60, limit=5) == ["due-1m"]
    assert await store.claim_feeds("D", names, T0, 60) == []
    assert await store.claim_feeds("D", names, T0 + timedelta(seconds=61), 60, limit=0) == []


class LeaseWatch:
    """A real store that also tracks how many feed leases its owner holds at once."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.held: set[str] = set()
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def claim_feeds(self, *args: Any, **kw: Any) -> list[str]:
        names: list[str] = await self._inner.claim_feeds(*args, **kw)
        self.held |= set(names)
        self.most = max(self.most, len(self.held))
        return names

    async def release_feed(self, owner: str, name: str) -> None:
        await self._inner.release_feed(owner, name)
        self.held.discard(name)


async def test_a_poller_keeps_at_most_its_concurrency_leased(
    tmp_path: Path, store_url: str
) -> None:
    """40 due feeds, concurrency 4: never more than 4 leases held at once, yet every
    feed is polled in the one call."""
    async with FeedHost(40, delay_s=0.02) as feeds:
        config = Config(
            store=StoreConfig(url=store_url, lease=30),
            fetch=FetchConfig(allow_private_networks=True, concurrency=4, per_host_concurrency=4),
            feeds=[FeedConfig(name=n, url=feeds.url(n), interval=600) for n in feeds.names],
        )
        clock = SystemClock()
        async with (
            open_store(store_url, clock=clock, instance_id="solo") as s,
            aiohttp.ClientSession() as session,
        ):
            watch = LeaseWatch(s)
            outcomes = await Poller(config, watch, session, clock, owner="solo").poll_due()
            assert await s.claim_feeds("other", feeds.names, clock.now(), 30) == []
        assert sorted(o.feed for o in outcomes) == feeds.names
        assert all(o.status == "ok" for o in outcomes)
        assert watch.most == 4
        assert watch.held == set()
