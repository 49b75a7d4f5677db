"""The poll pipeline end to end: local feed servers, a real SQLite store, a fake clock."""

from __future__ import annotations

import random
import resource
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.app.poll import Poller
from monitor.config import Config, FeedConfig, FetchConfig
from monitor.core.models import Article
from monitor.ports import NewOutboxEntry, StoryRecord
from monitor.store import open_store
from tests.conftest import FakeClock
from tests.fakes.feed_server import (
    FeedServer,
    gzip_bomb,
    huge_body,
    never_answers,
    status,
    trickle,
)

DATA = Path(__file__).parent / "data" / "feeds"


def rss(n: int, start: int = 0, prefix: str = "item") -> bytes:
    items = "".join(
        f"<item><title>{prefix} {i}</title><link>https://news.example.com/{prefix}/{i}</link>"
        f"<guid isPermaLink='false'>{prefix}-{i}</guid>"
        f"<pubDate>Thu, 30 Jan 2025 {i % 24:02d}:00:00 +0900</pubDate></item>"
        for i in range(start, start + n)
    )
    return f'<rss version="2.0"><channel><title>{prefix}</title>{items}</channel></rss>'.encode()


def feed_name(path: str) -> str:
    return path.strip("/").replace("/", "-").replace(".", "-")


def make_config(server: FeedServer, paths: list[str], tmp: Path, **feed_kw: Any) -> Config:
    feeds = [
        FeedConfig(
            name=p.strip("/").replace("/", "-").replace(".", "-"), url=server.url(p), **feed_kw
        )
        for p in paths
    ]
    fetch = FetchConfig(
        allow_private_networks=True,
        connect_timeout=1.0,
        read_timeout=1.0,
        total_timeout=1.5,
        concurrency=64,
        per_host_concurrency=64,
        parse_timeout=5.0,
    )
    return Config.model_validate(
        {"store": {"url": f"sqlite:///{tmp}/monitor.db"}, "fetch": fetch, "feeds": feeds}
    )


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


class Harness:
    def __init__(self, config: Config, clock: FakeClock) -> None:
        self.config = config
        self.clock = clock
        self.reported: list[tuple[str, list[Article]]] = []

    async def on_new(
        self, feed: FeedConfig, articles: list[Article]
    ) -> tuple[list[StoryRecord], list[NewOutboxEntry]]:
        self.reported.append((feed.name, articles))
        return [], []


async def poll_once(config: Config, clock: FakeClock, due: bool = False) -> list[Any]:
    from monitor.feeds.http import make_session

    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, rng=random.Random(1), owner="t")
        return await (poller.poll_due() if due else poller.poll_all())


async def test_first_fetch_is_recorded_silently_then_only_new_items_report(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    route = server.add("/a.xml", rss(5))
    config = make_config(server, ["/a.xml"], tmp_path)
    [first] = await poll_once(config, clock)
    assert first.status == "ok" and first.new == () and first.first_fetch and first.recorded == 5
    route.body = rss(7)
    [second] = await poll_once(config, clock)
    assert [a.title for a in second.new] == ["item 5", "item 6"]
    assert all(a.seen_at == clock.now() for a in second.new)
    [third] = await poll_once(config, clock)
    assert third.status == "ok" and third.new == ()


async def test_backfill_reports_the_first_fetch(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.add("/a.xml", rss(3))
    config = make_config(server, ["/a.xml"], tmp_path, backfill=True)
    [outcome] = await poll_once(config, clock)
    assert [a.title for a in outcome.new] == ["item 0", "item 1", "item 2"]


async def test_unchanged_feed_gets_304_and_reports_nothing(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.add("/e.xml", rss(3), etag='"abc"')
    server.add("/m.xml", rss(3), last_modified="Thu, 30 Jan 2025 09:00:00 GMT")
    config = make_config(server, ["/e.xml", "/m.xml"], tmp_path, backfill=True)
    await poll_once(config, clock)
    second = await poll_once(config, clock)
    assert [o.status for o in second] == ["not_modified", "not_modified"]
    assert all(o.new == () and o.parser == "" for o in second)  # nothing parsed
    assert server.requests["/e.xml"][1]["If-None-Match"] == '"abc"'
    assert server.requests["/m.xml"][1]["If-Modified-Since"] == "Thu, 30 Jan 2025 09:00:00 GMT"


async def test_updated_item_is_detected_but_not_reported_again(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    route = server.add("/a.xml", rss(2))
    config = make_config(server, ["/a.xml"], tmp_path)
    await poll_once(config, clock)
    route.body = route.body.replace(b"item 1</title>", b"item 1 (updated)</title>")
    [outcome] = await poll_once(config, clock)
    assert outcome.updated == 1 and outcome.new == ()
    [again] = await poll_once(config, clock)
    assert again.updated == 0


async def test_429_retry_after_holds_the_feed_back(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.handle("/busy.xml", status(429, {"Retry-After": "120"}))
    config = make_config(server, ["/busy.xml"], tmp_path)
    [outcome] = await poll_once(config, clock, due=True)
    assert outcome.status == "error" and "429" in (outcome.error or "")
    assert outcome.next_poll_at >= clock.now() + timedelta(seconds=120)
    for step in (30, 60, 29):  # 119 s later: still held back
        clock.advance(step)
        assert await poll_once(config, clock, due=True) == []
    assert server.hits("/busy.xml") == 1
    clock.set(outcome.next_poll_at)
    [retried] = await poll_once(config, clock, due=True)
    assert retried.status == "error" and server.hits("/busy.xml") == 2


async def test_failures_back_off_and_show_in_feed_health(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.handle("/down.xml", status(500))
    config = make_config(server, ["/down.xml"], tmp_path)
    waits = []
    for _ in range(4):
        [o] = await poll_once(config, clock, due=True)
        waits.append((o.next_poll_at - clock.now()).total_seconds())
        clock.set(o.next_poll_at)
    assert all(w >= config.fetch.min_interval for w in waits)
    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store:
        state = await store.load_feed_state("down-xml")
    assert state is not None
    assert state.consecutive_failures == 4 and "500" in (state.last_error or "")
    assert state.next_poll_at is not None  # never given up on


async def test_hostile_feeds_fail_alone_and_the_others_are_delivered(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    canary = f"http://127.0.0.1:{server.port}/canary"
    server.add("/canary", b"secret")
    hostile = {
        "/bomb.xml": gzip_bomb(512),
        "/big.xml": huge_body(50_000_000),
        "/trickle.xml": trickle(0.5),
        "/silent.xml": never_answers,
    }
    for path, handler in hostile.items():
        server.handle(path, handler)
    bodies = {
        "/quadratic.xml": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
        + b"x" * 50_000
        + b'">]><rss version="2.0"><channel><title>&a;&a;&a;</title></channel></rss>',
        "/lol.xml": b'<!DOCTYPE l [<!ENTITY l "l"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">]>'
        b'<rss version="2.0"><channel><title>&l2;</title></channel></rss>',
        "/xxe.xml": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{canary}">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&x;</title>'
        "<link>https://a/1</link></item></channel></rss>".encode(),
        "/path.xml": b"/etc/passwd",
        "/url.xml": canary.encode(),
        "/random.xml": random.Random(3).randbytes(200_000),
    }
    for path, body in bodies.items():
        server.add(path, body)
    for i in range(3):
        server.add(f"/good{i}.xml", rss(4, prefix=f"good{i}"))
    good = [f"/good{i}.xml" for i in range(3)]
    config = make_config(server, [*hostile, *bodies, *good], tmp_path, backfill=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcomes = {o.feed: o for o in await poll_once(config, clock)}
    assert time.monotonic() - started < 5.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 300
    for path in [*hostile, *bodies]:
        name = path.strip("/").replace(".", "-")
        assert outcomes[name].status == "error", name
        assert outcomes[name].error
    for i in range(3):
        assert len(outcomes[f"good{i}-xml"].new) == 4
    assert server.hits("/canary") == 0


async def test_korean_charsets_over_http(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.add(
        "/cp949.xml",
        (DATA / "yonhap-cp949-nodecl.xml").read_bytes(),
        content_type="text/xml; charset=utf-8",
    )
    server.add(
        "/euckr.xml",
        (DATA / "euckr-declared.xml").read_bytes(),
        content_type="application/rss+xml; charset=euc-kr",
    )
    config = make_config(
        server, ["/cp949.xml", "/euckr.xml"], tmp_path, backfill=True, timezone="Asia/Seoul"
    )
    titles = {o.feed: [a.title for a in o.new] for o in await poll_once(config, clock)}
    assert titles["cp949-xml"] == ["[속보] 삼성전자, HBM3E 엔비디아 퀄 테스트 통과"]
    assert titles["euckr-xml"] == ["햏자의 반도체 일기: 똠얌꿍과 HBM"]


async def test_200_feeds_with_one_hanging_and_one_malformed(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    paths = [f"/f{i}.xml" for i in range(200)]
    for i, p in enumerate(paths):
        server.add(p, rss(3, prefix=f"f{i}"))
    server.handle("/f17.xml", never_answers)
    server.add("/f42.xml", b"<rss><channel><title>broken</titl")
    config = make_config(server, paths, tmp_path, backfill=True)
    started = time.monotonic()
    outcomes = await poll_once(config, clock)
    assert time.monotonic() - started < 10
    failed = sorted(o.feed for o in outcomes if o.status == "error")
    assert failed == ["f17-xml", "f42-xml"]
    assert sum(len(o.new) for o in outcomes) == 198 * 3


async def test_on_new_gets_articles_and_its_outbox_entries_commit_with_the_seen_marks(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    from monitor.core.models import Alert
    from monitor.feeds.http import make_session

    route = server.add("/a.xml", rss(2))
    config = make_config(server, ["/a.xml"], tmp_path)
    calls: list[list[str]] = []
    fail = {"now": False}

    async def on_new(
        feed: FeedConfig, articles: list[Article]
    ) -> tuple[list[StoryRecord], list[NewOutboxEntry]]:
        from monitor.core.errors import StoreError

        if fail["now"]:
            raise StoreError("engine unavailable")
        calls.append([a.item_id for a in articles])
        alerts = [
            NewOutboxEntry(
                "console",
                Alert(kind="news", key=a.item_id, title=a.title, created_at=clock.now()),
                dedupe_key=a.item_id,
            )
            for a in articles
        ]
        return [], alerts

    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, on_new=on_new, owner="t")
        await poller.poll_all()  # first fetch: silent, on_new not called
        assert calls == []
        route.body = rss(3)
        fail["now"] = True
        [o] = await poller.poll_all()
        assert o.status == "error"  # nothing marked seen ...
        fail["now"] = False
        [o] = await poller.poll_all()  # ... so the item comes back
        assert calls == [["item-2"]]
        assert [e.dedupe_key for e in await store.list_outbox()] == ["item-2"]


async def test_a_changed_url_is_a_new_feed(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    server.add("/old.xml", rss(2, prefix="old"), etag='"o"')
    server.add("/new.xml", rss(3, prefix="new"), etag='"n"')
    config = make_config(server, ["/old.xml"], tmp_path)
    await poll_once(config, clock)
    moved = config.model_copy(
        update={"feeds": [config.feeds[0].model_copy(update={"url": server.url("/new.xml")})]}
    )
    [outcome] = await poll_once(moved, clock)
    assert outcome.status == "ok" and outcome.new == () and outcome.first_fetch
    assert "If-None-Match" not in server.requests["/new.xml"][0]


async def test_a_big_feed_is_parsed_in_a_child_process_and_delivered(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    body = rss(4000, prefix="big")
    assert len(body) > 512 * 1024  # over the in-process limit
    server.add("/big.xml", body)
    config = make_config(server, ["/big.xml"], tmp_path, backfill=True)
    [outcome] = await poll_once(config, clock)
    assert outcome.status == "ok" and len(outcome.new) == 4000


async def test_poll_once_reports_what_a_new_feed_holds(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    from monitor.feeds.http import make_session

    server.add("/a.xml", rss(2))
    config = make_config(server, ["/a.xml"], tmp_path)
    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, owner="t", report_first=True)
        [first] = await poller.poll_all()
        [second] = await poller.poll_all()
    assert [a.title for a in first.new] == ["item 0", "item 1"]
    assert second.new == ()


async def test_a_crash_while_analysing_is_that_feeds_failure_with_backoff(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    from monitor.feeds.http import make_session

    server.add("/a.xml", rss(2))
    config = make_config(server, ["/a.xml"], tmp_path, backfill=True)

    async def broken(feed: FeedConfig, articles: list[Article]) -> Any:
        raise KeyError("a bug on one article")

    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, on_new=broken, owner="t")
        [outcome] = await poller.poll_due()
        assert outcome.status == "error" and "KeyError" in (outcome.error or "")
        state = await store.load_feed_state("a-xml")
        assert state is not None and state.consecutive_failures == 1
        assert "analysis failed" in (state.last_error or "")
        assert state.next_poll_at is not None and state.next_poll_at > clock.now()
        assert await poller.poll_due() == []  # backing off: not fetched again at once
        assert await store.known_items("a-xml", ["item-0"]) == {}  # nothing marked seen
    assert server.hits("/a.xml") == 1


class _SlowFeeds:
    """Feeds at `paths` that answer after 0.3 s; `peak` is the most requests at once."""

    def __init__(self, server: FeedServer, paths: list[str]) -> None:
        self.in_flight = self.peak = 0
        for p in paths:
            server.handle(p, self.answer)

    async def answer(self, request: Any) -> Any:
        import asyncio

        from aiohttp import web

        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.3)
        self.in_flight -= 1
        return web.Response(body=rss(1), content_type="application/rss+xml")


def _four_at_a_time(config: Config) -> Config:
    return config.model_copy(update={"fetch": config.fetch.model_copy(update={"concurrency": 4})})


async def test_overlapping_rounds_never_hold_more_than_concurrency_feeds(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    import asyncio

    from monitor.feeds.http import make_session

    paths = [f"/s{i}.xml" for i in range(10)]
    feeds = _SlowFeeds(server, paths)
    config = _four_at_a_time(make_config(server, paths, tmp_path))
    store = open_store(config.store.url, clock=clock, instance_id="t")
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, owner="t")
        rounds = [asyncio.create_task(poller.poll_due())]
        leased = []
        for _ in range(3):  # the daemon starts a round every tick, slow feeds or not
            await asyncio.sleep(0.1)
            rounds.append(asyncio.create_task(poller.poll_due()))
            await asyncio.sleep(0.05)
            leased.append(_leases_held(tmp_path / "monitor.db", "t"))
        outcomes = [o for r in await asyncio.gather(*rounds) for o in r]
    assert sorted(o.feed for o in outcomes) == sorted(feed_name(p) for p in paths)
    assert feeds.peak <= 4
    # A lease covers a poll in flight, never a queue: at most `concurrency` at a time.
    assert max(leased) <= 4, leased


async def test_rounds_started_while_a_claim_is_slow_stay_within_concurrency(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    """A busy store answers a claim late; the ticks go on starting rounds meanwhile.
    Those rounds must see the slots the pending claim is about to fill."""
    import asyncio

    from monitor.feeds.http import make_session

    paths = [f"/c{i}.xml" for i in range(12)]
    feeds = _SlowFeeds(server, paths)
    config = _four_at_a_time(make_config(server, paths, tmp_path))
    store = open_store(config.store.url, clock=clock, instance_id="t")
    claim = store.claim_feeds

    async def late_claim(*args: Any, **kwargs: Any) -> list[str]:
        await asyncio.sleep(0.25)  # a store under load
        return await claim(*args, **kwargs)

    store.claim_feeds = late_claim  # type: ignore[method-assign]
    async with store, make_session(config.fetch) as session:
        poller = Poller(config, store, session, clock, owner="t")
        rounds, leased = [], []
        for _ in range(8):  # a round every tick, each tick sooner than a claim returns
            rounds.append(asyncio.create_task(poller.poll_due()))
            await asyncio.sleep(0.1)
            leased.append(_leases_held(tmp_path / "monitor.db", "t"))
        outcomes = [o for r in await asyncio.gather(*rounds) for o in r]
    assert sorted(o.feed for o in outcomes) == sorted(feed_name(p) for p in paths)
    assert feeds.peak <= 4
    assert max(leased) <= 4, leased  # no feed waits, leased, for a fetch slot


def _leases_held(db: Path, owner: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM feed_leases WHERE owner = ? AND lease_until IS NOT NULL",
            (owner,),
        ).fetchone()
    return int(row[0])


async def test_each_feed_that_commits_alerts_hands_them_over_at_once(
    server: FeedServer, tmp_path: Path, clock: FakeClock
) -> None:
    """The daemon's dispatcher gets a feed's alerts as soon as they are in the store,
    not after the slowest feed of the round, and already claimed for it: another
    instance cannot take them, and it needs no claim of its own before sending."""
    from monitor.core.models import Alert
    from monitor.feeds.http import make_session

    routes = [server.add(p, rss(1, prefix=p[1])) for p in ("/a.xml", "/b.xml", "/c.xml")]
    config = make_config(server, ["/a.xml", "/b.xml", "/c.xml"], tmp_path)
    store = open_store(config.store.url, clock=clock, instance_id="t")
    handed: list[list[tuple[str, str, int]]] = []

    async def on_new(
        feed: FeedConfig, articles: list[Article]
    ) -> tuple[list[StoryRecord], list[NewOutboxEntry]]:
        alert = Alert(kind="news", key=feed.name, title=feed.name, created_at=clock.now())
        # only feed a has a matching story; b has news that alerts nobody
        return [], [NewOutboxEntry("console", alert, feed.name)] if feed.name == "a-xml" else []

    async with store, make_session(config.fetch) as session:
        poller = Poller(
            config, store, session, clock, on_new=on_new, owner="t",
            on_committed=lambda rows: handed.append(
                [(e.dedupe_key, e.status, e.attempts) for e in rows]
            ),
        )  # fmt: skip
        await poller.poll_all()  # first fetch: silent
        routes[0].body = rss(2, prefix="a")
        routes[1].body = rss(2, prefix="b")
        await poller.poll_all()
        [row] = await store.list_outbox()
        assert await store.claim_outbox("other", clock.now(), 10, 60) == []
    assert handed == [[("a-xml", "sending", 1)]]  # one hand-over, for the one feed with alerts
    assert (row.dedupe_key, row.status) == ("a-xml", "sending")
