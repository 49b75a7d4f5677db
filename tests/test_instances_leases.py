"""Leasing feeds a batch at a time, which is what lets several instances share the work."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.app.poll import Poller
from monitor.clock import SystemClock
from monitor.config import Config, FeedConfig, FetchConfig, NotifierConfig, StoreConfig
from monitor.core.routing import Destination
from monitor.notifiers.registry import make_notifier
from monitor.ports import NewOutboxEntry
from monitor.store import open_store
from tests.fakes.alerts import news_alert
from tests.fakes.discord_server import FakeDiscord
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

    def __init__(self, inner: Any, release_delay_s: float = 0.0) -> None:
        self._inner = inner
        self.held: set[str] = set()
        self.most = 0
        self._delay = release_delay_s
        self._releases = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def claim_feeds(self, *args: Any, **kw: Any) -> list[str]:
        names: list[str] = await self._inner.claim_feeds(*args, **kw)
        self.held |= set(names)
        self.most = max(self.most, len(self.held))
        return names

    async def release_feed(self, owner: str, name: str) -> None:
        self._releases += 1
        if self._delay and self._releases % 2:  # every other release is slow to commit
            await asyncio.sleep(self._delay)
        await self._inner.release_feed(owner, name)
        self.held.discard(name)


@pytest.mark.parametrize("release_delay_s", [0.0, 0.05])
async def test_a_poller_keeps_at_most_its_concurrency_leased(
    tmp_path: Path, store_url: str, release_delay_s: float
) -> None:
    """40 due feeds, concurrency 4: never more than 4 leases held at once, yet every
    feed is polled in the one call; also when releasing a lease takes the store a while
    (a slot is free only once its lease is)."""
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
            watch = LeaseWatch(s, release_delay_s)
            outcomes = await Poller(config, watch, session, clock, owner="solo").poll_due()
            assert await s.claim_feeds("other", feeds.names, clock.now(), 30) == []
        assert sorted(o.feed for o in outcomes) == feeds.names
        assert all(o.status == "ok" for o in outcomes)
        assert watch.most == 4
        assert watch.held == set()


async def test_two_dispatchers_with_a_short_lease_never_send_one_row_twice(store_url: str) -> None:
    """Each send takes 0.4 s and a claim lasts 1 s: a dispatcher that claimed ten rows
    must hand back what it cannot start within its lease instead of sending it after
    the other dispatcher has claimed it again."""
    settings = DispatchSettings(lease_s=1.0, batch=200, idle_s=0.02)
    owners = ("host-a:1", "host-b:2")
    stores = [open_store(store_url, instance_id=o) for o in owners]
    for s in stores:
        await s.open()
    alerts = [news_alert(i) for i in range(10)]
    try:
        await stores[0].enqueue([NewOutboxEntry("desk", a, a.key) for a in alerts])
        async with FakeDiscord(rate=None, delay_s=0.4) as fake, aiohttp.ClientSession() as http:
            desk = NotifierConfig(name="desk", kind="discord", url_env="D")
            dispatchers = [
                Dispatcher(
                    s,
                    {"desk": make_notifier(desk, http, fake.url)},
                    SystemClock(),
                    owner,
                    destinations={"desk": Destination("desk", digest_threshold=99)},
                    settings=settings,
                )
                for s, owner in zip(stores, owners, strict=True)
            ]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(d.run(stop)) for d in dispatchers]
            for _ in range(500):
                if await stores[0].outbox_depth() == 0:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.gather(*tasks)
        counts = Counter(b["embeds"][0]["title"] for b in fake.delivered())
        assert counts == Counter(f"[속보] {a.title}" for a in alerts)
    finally:
        for s in stores:
            await s.close()
