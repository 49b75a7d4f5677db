"""The outbox dispatcher against a real SQLite store and local Discord and Slack servers."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.clock import SystemClock
from monitor.config import NotifierConfig
from monitor.core.models import Alert
from monitor.core.routing import Destination
from monitor.notifiers.registry import make_notifier
from monitor.ports import FeedState, NewOutboxEntry, Notifier
from monitor.store import open_store
from tests.fakes.alerts import news_alert
from tests.fakes.discord_server import FakeDiscord, Received
from tests.fakes.dispatch_worker import UnpacedDiscord
from tests.fakes.slack_server import FakeSlack

FAST = DispatchSettings(lease_s=30, idle_s=0.02, base_backoff_s=0.2, digest_hold_s=1.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[object]:
    s = open_store(f"sqlite:///{tmp_path}/monitor.db")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def notifier(kind: str, name: str, session: aiohttp.ClientSession, url: str) -> Notifier:
    return make_notifier(NotifierConfig(name=name, kind=kind, url_env="UNUSED"), session, url)  # type: ignore[arg-type]


async def enqueue(store, destination: str, alerts: list[Alert]) -> None:
    """Enqueue the way the poller does: in the transaction that records a poll."""
    entries = [NewOutboxEntry(destination, a, a.key) for a in alerts]
    await store.commit_poll(FeedState(name="yonhap-economy"), [], [], entries)


async def run_until(dispatcher: Dispatcher, done: Callable[[], bool], timeout: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    try:
        while not done() and loop.time() < end:
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


DIGEST_LINE = re.compile(r"^• \\?\[?\S+ (?:\\\[속보\\\] )?(.*?) — ")


def titles_in(bodies: list[dict]) -> Counter[str]:
    """Every alert title a destination showed, singles and digest lines alike."""
    seen: Counter[str] = Counter()
    for body in bodies:
        for embed in body.get("embeds", []):
            if embed["title"].startswith("Digest:"):
                for line in embed["description"].splitlines():
                    m = DIGEST_LINE.match(line)
                    if m:
                        seen[m.group(1)] += 1
            else:
                seen[embed["title"].removeprefix("[속보] ")] += 1
    return seen


def waits_after_429(posts: list[Received]) -> list[float]:
    """For each 429, how long until the next request reached the server."""
    return [round(posts[i + 1].at - p.at, 3) for i, p in enumerate(posts[:-1]) if p.status == 429]


def no_post_within(posts: list[Received], after: float) -> bool:
    """After each 429, nothing reached the server before `after` seconds had passed."""
    for i, p in enumerate(posts):
        if p.status == 429 and any(0 < q.at - p.at < after for q in posts[i + 1 :]):
            return False
    return True


async def test_discord_429_with_via_every_alert_arrives_once_and_never_early(store, session):
    alerts = [news_alert(i) for i in range(4)]
    async with FakeDiscord() as fake:
        fake.rate_limit_next(3, retry_after=1.5, via=True)
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", alerts)
        await run_until(d, lambda: len(fake.delivered()) >= 4, timeout=15)

    assert [p.status for p in fake.posts()][:3] == [429, 429, 429]
    assert titles_in(fake.delivered()) == Counter(a.title for a in alerts)
    assert no_post_within(fake.posts(), 1.5)
    assert await store.outbox_depth() == 0
    print(f"\ndiscord 429 x3 (retry_after 1.5): waits {waits_after_429(fake.posts())} s")


async def test_slack_retry_after_twice_every_alert_arrives_once(store, session):
    alerts = [news_alert(i) for i in range(3)]
    async with FakeSlack() as fake:
        fake.rate_limit_next(2, retry_after=1)
        d = Dispatcher(
            store,
            {"team": notifier("slack", "team", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "team", alerts)
        await run_until(d, lambda: len(fake.delivered()) >= 3, timeout=15)

    headers = [b["blocks"][0]["text"]["text"] for b in fake.delivered()]
    assert Counter(headers) == Counter(f"[속보] {a.title}" for a in alerts)
    assert [r.status for r in fake.received][:2] == [429, 429]
    assert no_post_within(fake.received, 1.0)
    gaps = [b.at - a.at for a, b in zip(fake.received, fake.received[1:], strict=False)]
    assert min(gaps) >= 0.95  # Slack's 1 message per second
    print(f"\nslack 429 x2 (Retry-After 1): waits {waits_after_429(fake.received)} s")


async def test_a_deleted_discord_webhook_breaks_only_its_destination(store, session):
    async with FakeDiscord() as discord, FakeSlack() as slack:
        discord.delete_webhook()
        d = Dispatcher(
            store,
            {
                "desk": notifier("discord", "desk", session, discord.url),
                "team": notifier("slack", "team", session, slack.url),
            },
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", [news_alert(i) for i in range(3)])
        await enqueue(store, "team", [news_alert(i) for i in range(3)])
        await run_until(d, lambda: len(slack.delivered()) >= 3, timeout=10)
        await d.dispatch_once()

    assert len(discord.received) == 1  # it stopped at the first 404 / 10015
    assert len(slack.delivered()) == 3
    states = {s.name: s for s in await store.load_destinations()}
    assert states["desk"].broken and "10015" in (states["desk"].reason or "")
    assert not states["team"].broken
    failed = await store.list_outbox(("failed",))
    assert [e.destination for e in failed] == ["desk"] * 3
    assert discord.token not in (states["desk"].reason or "")


async def test_a_burst_becomes_one_digest_within_discords_rate(store, session):
    """50 matching stories arrive within 2.5 s (20/s): five single posts, then a digest.

    That is ten seconds and the default 10 s digest hold, compressed four times.
    """
    alerts = [news_alert(i) for i in range(50)]
    settings = DispatchSettings(lease_s=30, idle_s=0.02, digest_hold_s=2.5)
    async with FakeDiscord() as fake:
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            destinations={"desk": Destination("desk", digest_threshold=5, digest_window_s=120)},
            settings=settings,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        for i in range(0, 50, 5):
            await enqueue(store, "desk", alerts[i : i + 5])
            await asyncio.sleep(0.25)
        for _ in range(200):
            if await store.outbox_depth() == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    posts = fake.posts()
    assert all(p.status == 200 for p in posts), "never rate limited by Discord"
    assert len(posts) <= 7, f"{len(posts)} posts for 50 stories"
    assert sum(1 for b in fake.delivered() if b["embeds"][0]["title"].startswith("Digest:")) >= 1
    assert set(titles_in(fake.delivered())) == {a.title for a in alerts}
    busiest = max(sum(1 for q in posts if 0 <= q.at - p.at < 2.0) for p in posts)
    assert busiest <= 5
    print(f"\n50 stories in 2.5 s: {len(posts)} posts, at most {busiest} in any 2 s")


async def test_server_errors_are_retried_with_backoff(store, session):
    async with FakeDiscord() as fake:
        fake.fail_next(2, 502)
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", [news_alert(1)])
        await run_until(d, lambda: len(fake.delivered()) >= 1, timeout=10)
    assert [p.status for p in fake.posts()] == [502, 502, 200]
    gaps = [b.at - a.at for a, b in zip(fake.posts(), fake.posts()[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # base 0.2 s, doubling, with jitter >= half


async def test_a_refused_alert_is_rejected_and_the_rest_go_on(store, session):
    async with FakeDiscord() as fake:
        fake.reject_next(50035)
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", [news_alert(1), news_alert(2)])
        await run_until(d, lambda: len(fake.delivered()) >= 1, timeout=10)
    [rejected] = await store.list_outbox(("rejected",))
    assert rejected.alert.key == "story:0001" and "50035" in (rejected.last_error or "")
    assert titles_in(fake.delivered()) == Counter({news_alert(2).title: 1})
    states = {s.name: s for s in await store.load_destinations()}
    assert not states["desk"].broken


async def test_drain_flushes_held_digests_before_shutdown(store, session):
    async with FakeDiscord(rate=None) as fake:
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=DispatchSettings(idle_s=0.02, digest_hold_s=60.0),
        )
        await enqueue(store, "desk", [news_alert(i) for i in range(12)])
        remaining = await d.drain(5.0)
    assert remaining == 0
    assert len(fake.posts()) == 6  # five singles and one digest of seven
    assert sum(titles_in(fake.delivered()).values()) == 12


async def test_no_log_line_carries_a_webhook_token(store, session, caplog):
    caplog.set_level(logging.DEBUG)
    async with FakeDiscord() as discord, FakeSlack() as slack:
        discord.rate_limit_next(1, retry_after=0.2)
        discord.fail_next(1, 503)
        discord.reject_next(50035)
        slack.fail_next(1, 500)
        slack.rate_limit_next(1, retry_after=1)
        d = Dispatcher(
            store,
            {
                "desk": notifier("discord", "desk", session, discord.url),
                "team": notifier("slack", "team", session, slack.url),
            },
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", [news_alert(i) for i in range(3)])
        await enqueue(store, "team", [news_alert(i) for i in range(2)])
        await run_until(
            d, lambda: len(discord.delivered()) >= 2 and len(slack.delivered()) >= 2, timeout=10
        )
        discord.delete_webhook()
        await enqueue(store, "desk", [news_alert(9)])
        await d.dispatch_once()
        dead = notifier("discord", "gone", session, discord.url.replace(str(discord.port), "9"))
        await Dispatcher(store, {"gone": dead}, SystemClock(), "t2", settings=FAST).drain(0.1)
    text = "\n".join(
        r.getMessage()
        + " "
        + str(getattr(r, "monitor_fields", ""))
        + (caplog.handler.format(r) if r.exc_info else "")
        for r in caplog.records
    )
    assert "delivery_retry" in text and "destination_gone" in text
    for secret in (discord.token, "slackSecretToken0123456789"):
        assert secret not in text
        for e in await store.list_outbox(("pending", "failed", "rejected", "sent")):
            assert secret not in (e.last_error or "")


async def test_max_attempts_gives_up_and_reports_every_outcome(store, session):
    outcomes: list[tuple[str, str]] = []
    async with FakeDiscord() as fake:
        fake.fail_next(5, 503)
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=DispatchSettings(idle_s=0.02, base_backoff_s=0.05, max_attempts=2),
            on_result=lambda dest, outcome, alert, latency: outcomes.append((dest, outcome)),
        )
        await enqueue(store, "desk", [news_alert(1)])
        await d.drain(3.0)
    [failed] = await store.list_outbox(("failed",))
    assert failed.attempts == 2 and "503" in (failed.last_error or "")
    assert len(fake.posts()) == 2
    assert outcomes == [("desk", "retry"), ("desk", "failed")]


async def test_discords_bucket_headers_are_obeyed_even_beyond_the_declared_rate(store, session):
    """With our own pace lifted, X-RateLimit-Remaining: 0 alone keeps us clear of 429s."""
    alerts = [news_alert(i) for i in range(8)]
    async with FakeDiscord(rate=(4, 1.0)) as fake:
        desk = UnpacedDiscord(
            NotifierConfig(name="desk", kind="discord", url_env="D"), session, fake.url
        )
        d = Dispatcher(
            store,
            {"desk": desk},
            SystemClock(),
            "test",
            destinations={"desk": Destination("desk", digest_threshold=99)},
            settings=FAST,
        )
        await enqueue(store, "desk", alerts)
        await run_until(d, lambda: len(fake.delivered()) >= 8, timeout=10)
    assert [p.status for p in fake.posts()] == [200] * 8
    assert fake.posts()[4].at - fake.posts()[0].at >= 1.0


async def test_a_long_retry_after_hands_every_row_back_instead_of_holding_it(store, session):
    async with FakeDiscord() as fake:
        fake.rate_limit_next(1, retry_after=60.0)
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        await enqueue(store, "desk", [news_alert(1), news_alert(2)])
        before = SystemClock().now()
        assert await d.dispatch_once() == 2
    rows = await store.list_outbox()
    assert [r.status for r in rows] == ["pending", "pending"]  # no lease left to expire
    assert all((r.next_attempt_at - before).total_seconds() >= 59 for r in rows)
    assert len(fake.posts()) == 1


class CommitDuringClaim:
    """The real store, except that one empty claim is overtaken by a poll committing
    a row and waking the dispatcher, as happens when a poll lands mid-claim."""

    def __init__(self, store, alert: Alert) -> None:
        self._store = store
        self._alert = alert
        self.dispatcher: Dispatcher | None = None
        self.committed_at: float | None = None

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def claim_outbox(self, *args, **kwargs):
        rows = await self._store.claim_outbox(*args, **kwargs)
        if not rows and self.committed_at is None and self.dispatcher is not None:
            await enqueue(self._store, "desk", [self._alert])
            self.committed_at = asyncio.get_running_loop().time()
            self.dispatcher.wake()
        return rows


async def test_a_row_committed_during_an_empty_claim_goes_out_without_the_idle_pause(
    store, session
):
    racing = CommitDuringClaim(store, news_alert(7))
    async with FakeDiscord() as fake:
        d = Dispatcher(
            racing,  # type: ignore[arg-type]
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=DispatchSettings(idle_s=5.0),
        )
        racing.dispatcher = d
        await run_until(d, lambda: len(fake.delivered()) >= 1, timeout=3)
    assert racing.committed_at is not None
    # The wake came while the claim ran: the next claim follows at once, not after 5 s.
    assert fake.posts(), "the row waited for the idle pause"
    [post] = fake.posts()
    assert post.at - racing.committed_at < 1.0


class CountingClaims:
    """The real store, counting the dispatcher's claims that returned rows."""

    def __init__(self, store) -> None:
        self._store = store
        self.claimed = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def claim_outbox(self, *args, **kwargs):
        rows = await self._store.claim_outbox(*args, **kwargs)
        self.claimed += len(rows)
        return rows


def start_desk(
    store, session, fake: FakeDiscord
) -> tuple[Dispatcher, asyncio.Event, asyncio.Task[None]]:
    """A dispatcher for one Discord destination ("desk") on `store` (the real one or a
    wrapper), running with a 30 s idle pause: it, its stop event and its task."""
    d = Dispatcher(
        store,
        {"desk": notifier("discord", "desk", session, fake.url)},
        SystemClock(),
        "test",
        settings=DispatchSettings(idle_s=30.0),
    )
    stop = asyncio.Event()
    return d, stop, asyncio.create_task(d.run(stop))


async def test_rows_handed_over_by_the_poll_go_out_without_a_claim(store, session):
    """A poll commits its alerts as this instance's claim and hands them over: they are
    sent at once, and nothing else is claimed on their way out."""
    counting = CountingClaims(store)
    async with FakeDiscord() as fake:
        d, stop, task = start_desk(counting, session, fake)
        await asyncio.sleep(0.1)  # the first claim found nothing; now idle for 30 s
        alerts = [news_alert(1), news_alert(2)]
        handed = await store.commit_poll_claimed(
            FeedState(name="yonhap-economy"),
            [],
            [],
            [NewOutboxEntry("desk", a, a.key) for a in alerts],
            "test",
            60,
        )
        d.take(handed)
        loop = asyncio.get_running_loop()
        end = loop.time() + 3
        while len(fake.delivered()) < 2 and loop.time() < end:
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert titles_in(fake.delivered()) == Counter(a.title for a in alerts)
    assert counting.claimed == 0  # no claim ever returned them: they were ours already
    assert [r.status for r in await store.list_outbox(("sent",))] == ["sent", "sent"]
    assert await store.outbox_depth() == 0


async def test_rows_handed_over_but_unsent_at_a_stop_are_handed_back(store, session):
    async with FakeDiscord() as fake:
        d = Dispatcher(
            store,
            {"desk": notifier("discord", "desk", session, fake.url)},
            SystemClock(),
            "test",
            settings=FAST,
        )
        handed = await store.commit_poll_claimed(
            FeedState(name="yonhap-economy"),
            [],
            [],
            [NewOutboxEntry("desk", news_alert(3), "k3")],
            "test",
            600,
        )
        d.take(handed)
        await d.release()  # a stop before the pass that would have sent it
    [row] = await store.list_outbox()
    assert (row.status, row.dedupe_key) == ("pending", "k3")
    assert fake.delivered() == []


class HeldClaim:
    """The real store, except that each claim waits until the test lets it through, as
    a claim does when the store is busy with a poll's own writes."""

    def __init__(self, store) -> None:
        self._store = store
        self.through = asyncio.Event()
        self.waiting = asyncio.Event()

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def claim_outbox(self, *args, **kwargs):
        self.waiting.set()
        await self.through.wait()
        return await self._store.claim_outbox(*args, **kwargs)


async def held_at_its_claim(
    store, session, fake: FakeDiscord, waiting: Alert
) -> tuple[HeldClaim, Dispatcher, asyncio.Event, asyncio.Task[None]]:
    """`waiting` queued and due, and a running dispatcher whose first claim (which will
    return it) is held: the store wrapper, the dispatcher, its stop event and its task."""
    held = HeldClaim(store)
    await enqueue(store, "desk", [waiting])
    d, stop, task = start_desk(held, session, fake)
    await asyncio.wait_for(held.waiting.wait(), 3)
    return held, d, stop, task


async def test_rows_handed_over_during_a_claim_go_out_before_it_returns(store, session):
    """A poll hands its alert over while the dispatcher's claim waits on the store: the
    alert is sent at once, and what the claim then returns goes out in the same pass."""
    waiting_row, fresh = news_alert(4), news_alert(5)
    async with FakeDiscord() as fake:
        held, d, stop, task = await held_at_its_claim(store, session, fake, waiting_row)
        handed = await store.commit_poll_claimed(
            FeedState(name="yonhap-economy"),
            [],
            [],
            [NewOutboxEntry("desk", fresh, fresh.key)],
            "test",
            60,
        )
        d.take(handed)
        loop = asyncio.get_running_loop()
        end = loop.time() + 3
        while not fake.delivered() and loop.time() < end:
            await asyncio.sleep(0.01)
        shown_first = titles_in(fake.delivered())
        held.through.set()
        end = loop.time() + 3
        while len(fake.delivered()) < 2 and loop.time() < end:
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert shown_first == Counter([fresh.title]), "the handed row waited for the claim"
    assert titles_in(fake.delivered()) == Counter([fresh.title, waiting_row.title])
    assert await store.outbox_depth() == 0


async def test_a_stop_during_a_held_claim_hands_every_row_back(store, session):
    async with FakeDiscord() as fake:
        _held, _d, _stop, task = await held_at_its_claim(store, session, fake, news_alert(6))
        task.cancel()  # the daemon's last resort when a drain overruns
        with pytest.raises(asyncio.CancelledError):
            await task
    rows = await store.list_outbox()
    assert [r.status for r in rows] == ["pending"]
    assert fake.delivered() == []
