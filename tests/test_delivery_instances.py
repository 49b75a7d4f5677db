"""Two dispatchers on one store (SQLite file, or PostgreSQL as several instances would run)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.clock import SystemClock
from monitor.config import NotifierConfig
from monitor.core.routing import Destination
from monitor.notifiers.registry import make_notifier
from monitor.ports import DestinationState, FeedState, NewOutboxEntry
from monitor.store import open_store
from tests.fakes.alerts import news_alert
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.stores import store_url

__all__ = ["store_url"]  # fixture used by name below

SETTINGS = DispatchSettings(lease_s=30, batch=3, idle_s=0.02)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_two_instances_deliver_every_alert_exactly_once(store_url: str, session) -> None:
    stores = [open_store(store_url, instance_id=name) for name in ("host-a:1", "host-b:2")]
    for s in stores:
        await s.open()
    alerts = [news_alert(i) for i in range(12)]
    await stores[0].commit_poll(
        FeedState(name="yonhap-economy"), [], [], [NewOutboxEntry("desk", a, a.key) for a in alerts]
    )
    try:
        async with FakeDiscord(rate=None) as fake:
            desk = NotifierConfig(name="desk", kind="discord", url_env="D")
            dispatchers = [
                Dispatcher(
                    s,
                    {"desk": make_notifier(desk, session, fake.url)},
                    SystemClock(),
                    s_owner,
                    destinations={"desk": Destination("desk", digest_threshold=99)},
                    settings=SETTINGS,
                )
                for s, s_owner in zip(stores, ("host-a:1", "host-b:2"), strict=True)
            ]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(d.run(stop)) for d in dispatchers]
            for _ in range(400):
                if len(fake.delivered()) >= len(alerts) and await stores[0].outbox_depth() == 0:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.gather(*tasks)
        counts = Counter(b["embeds"][0]["title"] for b in fake.delivered())
        assert counts == Counter(f"[속보] {a.title}" for a in alerts)
        assert await stores[1].outbox_depth() == 0
    finally:
        for s in stores:
            await s.close()


async def test_a_retry_from_the_command_line_reaches_a_running_dispatcher(
    store_url: str, session
) -> None:
    store = open_store(store_url, instance_id="host-a:1")
    await store.open()
    try:
        await store.save_destination(DestinationState("desk", broken=True, reason="HTTP 404"))
        await store.commit_poll(
            FeedState(name="yonhap-economy"), [], [], [NewOutboxEntry("desk", news_alert(1), "k1")]
        )
        async with FakeDiscord() as fake:
            desk = NotifierConfig(name="desk", kind="discord", url_env="D")
            d = Dispatcher(
                store,
                {"desk": make_notifier(desk, session, fake.url)},
                SystemClock(),
                "host-a:1",
                settings=SETTINGS,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(d.run(stop))
            for _ in range(100):
                if await store.list_outbox(("failed",)):
                    break
                await asyncio.sleep(0.02)
            assert fake.received == []  # a broken destination is not tried
            # what `monitor outbox --retry` does, while the daemon keeps running
            state = DestinationState("desk", broken=False)
            await store.save_destination(state)
            [failed] = await store.list_outbox(("failed",))
            await store.requeue([failed.id], SystemClock().now())
            for _ in range(100):
                if fake.delivered():
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await task
        assert len(fake.delivered()) == 1
    finally:
        await store.close()
