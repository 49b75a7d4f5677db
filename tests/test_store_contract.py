"""The Store contract, run identically on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.core.errors import StoreError
from monitor.core.models import Alert, PriceContext, Session, SourceRef, Stance, StanceLabel
from monitor.ports import DestinationState, FeedState, NewOutboxEntry, StoryRecord
from monitor.store import open_store
from tests.fakes.stores import (
    T0,
    AnyStore,
    alert,
    entry,
    feed,
    minutes,
    seen,
    store,
    store_url,
    story,
)

__all__ = ["store", "store_url"]  # fixtures used by name below

WEBHOOK = "https://discord.com/api/webhooks/123456/SECRETtoken_abc"


def story_with(**changes: Any) -> StoryRecord:
    return dataclasses.replace(story("odd"), **changes)


async def enqueue(
    s: AnyStore, n: int, destination: str = "desk", feed_name: str = "f"
) -> list[int]:
    return await s.commit_poll(
        feed(feed_name), [], [], [entry(destination, f"k{i}") for i in range(n)]
    )


# --------------------------------------------------------------------------- lifecycle


async def test_ping_answers_while_open_and_close_is_idempotent(store_url: str, clock: Any) -> None:
    s = open_store(store_url, clock=clock)
    async with s:
        assert await s.ping() is True
        assert await s.schema_version() >= 1
    assert await s.ping() is False
    await s.close()
    with pytest.raises(StoreError):
        await s.load_feed_states()


# --------------------------------------------------------------------------- feed state


async def test_feed_state_round_trips_every_field(store: AnyStore) -> None:
    state = FeedState(
        name="hankyung-economy",
        url="https://www.hankyung.com/feed/economy",
        etag='W/"abc"',
        last_modified="Mon, 27 Jan 2025 05:00:00 GMT",
        initialized=True,
        last_success=T0,
        last_attempt=T0 + timedelta(microseconds=123457),
        last_error="timeout",
        consecutive_failures=2,
        next_poll_at=T0 + minutes(5),
        interval_s=300.0,
        items_total=41,
    )
    assert await store.load_feed_state("hankyung-economy") is None
    await store.save_feed_state(state)
    assert await store.load_feed_state("hankyung-economy") == state


async def test_saving_feed_state_again_overwrites_and_clears_fields(store: AnyStore) -> None:
    await store.save_feed_state(feed("a", etag="e1", last_error="boom", consecutive_failures=3))
    await store.save_feed_state(feed("a", etag=None, last_error=None, consecutive_failures=0))
    await store.save_feed_state(feed("b"))
    states = await store.load_feed_states()
    assert [s.name for s in states] == ["a", "b"]
    assert (states[0].etag, states[0].last_error, states[0].consecutive_failures) == (None, None, 0)


async def test_feed_errors_are_stored_redacted(store: AnyStore) -> None:
    await store.save_feed_state(feed("a", last_error=f"POST {WEBHOOK} failed"))
    loaded = await store.load_feed_state("a")
    assert loaded is not None and loaded.last_error is not None
    assert "SECRETtoken" not in loaded.last_error
    assert "webhooks/123456/" in loaded.last_error


async def test_a_naive_timestamp_is_refused(store: AnyStore) -> None:
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.save_feed_state(feed("a", last_success=datetime(2025, 1, 27, 14, 30)))
    assert await store.load_feed_state("a") is None


# --------------------------------------------------------------------------- items and polls


async def test_known_items_reports_hashes_of_this_feed_only(store: AnyStore) -> None:
    await store.commit_poll(feed("a"), [seen("a", "1", "h1"), seen("a", "2", "h2")], [], [])
    await store.commit_poll(feed("b"), [seen("b", "3", "h3")], [], [])
    assert await store.known_items("a", ["1", "2", "3", "4"]) == {"1": "h1", "2": "h2"}
    assert await store.known_items("a", []) == {}


async def test_known_items_answers_for_more_ids_than_one_statement_takes(store: AnyStore) -> None:
    items = [seen("a", f"id-{i}", f"h{i}") for i in range(1200)]
    await store.commit_poll(feed("a"), items, [], [])
    known = await store.known_items("a", [f"id-{i}" for i in range(0, 1400, 2)])
    assert len(known) == 600 and known["id-1198"] == "h1198"


async def test_an_updated_item_keeps_its_first_sighting(store: AnyStore) -> None:
    await store.commit_poll(feed("a"), [seen("a", "1", "h1", at=T0)], [], [])
    later = seen("a", "1", "h2", at=T0 + minutes(30))
    await store.commit_poll(feed("a"), [later], [], [])
    assert await store.known_items("a", ["1"]) == {"1": "h2"}
    # The item still counts as seen at T0, so pruning at T0 + 10m drops it.
    await store.prune(T0 + minutes(10))
    assert await store.known_items("a", ["1"]) == {}


async def test_commit_poll_stores_state_items_stories_and_alerts(store: AnyStore) -> None:
    state = feed("a", initialized=True, items_total=2, etag="e2")
    ids = await store.commit_poll(
        state,
        [seen("a", "1"), seen("a", "2")],
        [story("s1")],
        [entry("desk", "s1"), entry("phone", "s1")],
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    assert await store.load_feed_state("a") == state
    assert set(await store.known_items("a", ["1", "2"])) == {"1", "2"}
    assert [s.key for s in await store.recent_stories(T0)] == ["s1"]
    rows = await store.list_outbox()
    assert [(r.id, r.destination, r.status, r.attempts) for r in rows] == [
        (ids[0], "desk", "pending", 0),
        (ids[1], "phone", "pending", 0),
    ]
    assert rows[0].alert == alert("s1")


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda: ([seen("a", None)], [], []), id="bad-item"),  # type: ignore[arg-type]
        pytest.param(lambda: ([seen("a", "1")], [story(None)], []), id="bad-story"),  # type: ignore[arg-type]
        pytest.param(
            lambda: ([seen("a", "1")], [story("s"), story_with(sources=({"x": object()},))], []),
            id="story-not-json",
        ),
        pytest.param(
            lambda: ([seen("a", "1")], [story("s")], [entry("desk", "s"), entry(None, "s")]),  # type: ignore[arg-type]
            id="bad-last-alert",
        ),
    ],
)
async def test_a_failure_mid_commit_leaves_nothing_behind(store: AnyStore, break_it: Any) -> None:
    before = feed("a", etag="old", items_total=1)
    await store.save_feed_state(before)
    items, stories, alerts = break_it()
    with pytest.raises(StoreError):
        await store.commit_poll(feed("a", etag="new", items_total=9), items, stories, alerts)
    assert await store.load_feed_state("a") == before
    assert await store.known_items("a", ["1"]) == {}
    assert await store.recent_stories(T0 - minutes(60)) == []
    assert await store.list_outbox() == []
    # and the store still works afterwards
    assert await store.commit_poll(feed("a"), [seen("a", "1")], [], [entry("desk", "s")])


async def test_an_alert_is_enqueued_once_per_destination(store: AnyStore) -> None:
    first = await store.commit_poll(feed("a"), [], [], [entry("desk", "s1"), entry("desk", "s1")])
    again = await store.commit_poll(feed("b"), [], [], [entry("desk", "s1")])
    other = await store.commit_poll(feed("b"), [], [], [entry("phone", "s1")])
    assert (len(first), again, len(other)) == (1, [], 1)
    assert [(r.destination, r.dedupe_key) for r in await store.list_outbox()] == [
        ("desk", "s1"),
        ("phone", "s1"),
    ]


async def test_a_sent_alert_is_not_enqueued_again(store: AnyStore) -> None:
    [row_id] = await enqueue(store, 1)
    [claimed] = await store.claim_outbox("w", T0, 10, 60)
    await store.mark_sent(claimed.id, T0, "msg-1")
    assert await store.commit_poll(feed("f"), [], [], [entry("desk", "k0")]) == []
    assert [r.id for r in await store.list_outbox(("sent",))] == [row_id]


async def test_stories_keep_their_first_sighting_and_take_new_sources(store: AnyStore) -> None:
    await store.commit_poll(feed("a"), [], [story("s1", at=T0, sources=1)], [])
    await store.commit_poll(feed("b"), [], [story("s1", at=T0 + minutes(9), sources=3)], [])
    await store.commit_poll(feed("b"), [], [story("s2", at=T0 + minutes(20))], [])
    got = await store.recent_stories(T0)
    assert [(s.key, s.first_seen, len(s.sources)) for s in got] == [
        ("s1", T0, 3),
        ("s2", T0 + minutes(20), 1),
    ]
    assert got[0].sources[2] == {"feed": "f2", "link": "https://x/2"}
    assert got[0].figures == ("16.97",)
    assert [s.key for s in await store.recent_stories(T0 + minutes(10))] == ["s2"]


# --------------------------------------------------------------------------- feed leases


async def test_claim_feeds_leases_due_free_feeds(store: AnyStore) -> None:
    await store.save_feed_state(feed("due", next_poll_at=T0))
    await store.save_feed_state(feed("later", next_poll_at=T0 + minutes(1)))
    claimed = await store.claim_feeds("A", ["due", "later", "new", "new"], T0, 60)
    assert claimed == ["due", "new"]  # a feed never polled is due
    assert await store.claim_feeds("B", ["due", "later", "new"], T0, 60) == []
    # the holder too must wait for its own lease: no feed is polled twice at once
    assert await store.claim_feeds("A", ["due"], T0, 60) == []


async def test_released_feed_is_free_again_but_only_its_owner_releases(store: AnyStore) -> None:
    assert await store.claim_feeds("A", ["f"], T0, 600) == ["f"]
    await store.release_feed("B", "f")
    assert await store.claim_feeds("B", ["f"], T0, 600) == []
    await store.release_feed("A", "f")
    assert await store.claim_feeds("B", ["f"], T0, 600) == ["f"]


async def test_a_dead_instance_feeds_are_taken_over_when_its_lease_runs_out(
    store: AnyStore,
) -> None:
    assert await store.claim_feeds("dead", ["f", "g"], T0, 120) == ["f", "g"]
    assert await store.claim_feeds("alive", ["f", "g"], T0 + timedelta(seconds=119), 120) == []
    assert await store.claim_feeds("alive", ["f", "g"], T0 + timedelta(seconds=120), 120) == [
        "f",
        "g",
    ]
    # the dead one's late release does not free the new holder's lease
    await store.release_feed("dead", "f")
    assert await store.claim_feeds("third", ["f"], T0 + timedelta(seconds=121), 120) == []


async def test_a_polled_feed_waits_for_its_next_poll_time(store: AnyStore) -> None:
    assert await store.claim_feeds("A", ["f"], T0, 60) == ["f"]
    await store.commit_poll(feed("f", next_poll_at=T0 + minutes(5)), [], [], [])
    await store.release_feed("A", "f")
    assert await store.claim_feeds("A", ["f"], T0 + minutes(4), 60) == []
    assert await store.claim_feeds("A", ["f"], T0 + minutes(5), 60) == ["f"]


async def test_a_feed_added_later_is_claimed_like_the_first_ones(store: AnyStore) -> None:
    """The daemon claims every quarter second; a feed added to the config (SIGHUP)
    after many claims is leased as readily as those of the first claim."""
    for k in range(3):  # each lease of 30 s has run out by the next claim
        assert await store.claim_feeds("A", ["f", "g"], T0 + minutes(k), 30) == ["f", "g"]
    assert await store.claim_feeds("A", ["f", "g", "h"], T0 + minutes(3), 30) == ["f", "g", "h"]
    assert await store.claim_feeds("B", ["h"], T0 + minutes(3), 30) == []  # leased to A


async def test_claim_feeds_keeps_poll_state_untouched(store: AnyStore) -> None:
    state = feed("f", etag="e", items_total=7, next_poll_at=T0)
    await store.save_feed_state(state)
    await store.claim_feeds("A", ["f", "unsaved"], T0, 60)
    assert await store.load_feed_state("f") == state
    assert await store.load_feed_state("unsaved") is None
    assert [s.name for s in await store.load_feed_states()] == ["f"]


# --------------------------------------------------------------------------- outbox


async def test_claim_outbox_takes_oldest_due_rows_up_to_the_limit(store: AnyStore) -> None:
    ids = await enqueue(store, 5)
    first = await store.claim_outbox("A", T0, 3, 60)
    second = await store.claim_outbox("B", T0, 3, 60)
    third = await store.claim_outbox("C", T0, 3, 60)
    assert [e.id for e in first] == ids[:3]
    assert [e.id for e in second] == ids[3:]
    assert third == []
    assert {(e.status, e.attempts) for e in first + second} == {("sending", 1)}
    assert await store.claim_outbox("D", T0, 0, 60) == []


async def test_a_poll_can_commit_its_alerts_already_claimed(store: AnyStore) -> None:
    """The poller hands its alerts straight to its own dispatcher: the rows it commits
    are that owner's claim, exactly as `claim_outbox` would have left them."""
    await enqueue(store, 1)  # k0 is queued already: not created again, not handed out
    handed = await store.commit_poll_claimed(
        feed("g"), [seen("g", "1")], [], [entry("desk", "k1"), entry("desk", "k0")], "A", 60
    )
    assert [e.dedupe_key for e in handed] == ["k1"]
    [e] = handed
    assert (e.status, e.attempts, e.destination) == ("sending", 1, "desk")
    assert e.alert == alert("k1")
    listed = {r.id: r for r in await store.list_outbox(("sending",))}
    assert listed[e.id] == e  # what a claim would have read back
    assert await store.known_items("g", ["1"]) == {"1": "h1"}
    # another owner gets only the row nobody holds; this one comes back when the lease ends
    assert [r.dedupe_key for r in await store.claim_outbox("B", T0, 10, 60)] == ["k0"]
    assert await store.claim_outbox("B", T0 + timedelta(seconds=59), 10, 60) == []
    late = await store.claim_outbox("C", T0 + timedelta(seconds=61), 10, 60)
    assert (e.id, 2) in {(r.id, r.attempts) for r in late}


async def test_rows_committed_claimed_go_back_on_release(store: AnyStore) -> None:
    [e] = await store.commit_poll_claimed(feed("g"), [], [], [entry("desk", "k1")], "A", 600)
    assert await store.outbox_depth() == 1
    assert await store.release_outbox("A", T0) == 1
    [again] = await store.claim_outbox("B", T0, 10, 60)
    assert (again.id, again.attempts) == (e.id, 2)


async def test_mark_sent_finishes_a_row(store: AnyStore) -> None:
    [row_id] = await enqueue(store, 1)
    assert await store.outbox_depth() == 1
    [e] = await store.claim_outbox("A", T0, 10, 60)
    assert await store.outbox_depth() == 1  # sending still counts
    await store.mark_sent(e.id, T0 + minutes(1), "1330000000000000001")
    [done] = await store.list_outbox(("sent",))
    assert (done.id, done.sent_at, done.message_ref) == (
        row_id,
        T0 + minutes(1),
        "1330000000000000001",
    )
    assert await store.outbox_depth() == 0
    assert await store.list_outbox() == []
    assert await store.claim_outbox("B", T0 + minutes(60), 10, 60) == []


async def test_mark_retry_holds_a_row_back_until_its_time(store: AnyStore) -> None:
    await enqueue(store, 1)
    [e] = await store.claim_outbox("A", T0, 10, 60)
    await store.mark_retry(e.id, T0 + minutes(2), f"429 from {WEBHOOK}")
    [row] = await store.list_outbox()
    assert (row.status, row.next_attempt_at, row.attempts) == ("pending", T0 + minutes(2), 1)
    assert row.last_error is not None and "SECRETtoken" not in row.last_error
    assert await store.claim_outbox("A", T0 + minutes(1), 10, 60) == []
    [again] = await store.claim_outbox("B", T0 + minutes(2), 10, 60)
    assert (again.id, again.attempts) == (e.id, 2)


async def test_rejected_and_failed_rows_wait_for_a_requeue(store: AnyStore) -> None:
    a, b, c = await enqueue(store, 3)
    claimed = await store.claim_outbox("A", T0, 10, 60)
    await store.mark_rejected(a, T0, "400 Bad Request: embed too long")
    await store.mark_failed(b, T0, "gave up after 8 attempts")
    await store.mark_sent(c, T0, None)
    assert len(claimed) == 3
    assert [(r.id, r.status) for r in await store.list_outbox()] == [(a, "rejected"), (b, "failed")]
    assert await store.outbox_depth() == 0
    assert await store.claim_outbox("A", T0 + minutes(60), 10, 60) == []

    assert await store.requeue([a, b, c, 999_999], T0 + minutes(1)) == 2  # sent and unknown stay
    rows = await store.list_outbox()
    assert [(r.id, r.status, r.attempts) for r in rows] == [(a, "pending", 0), (b, "pending", 0)]
    assert await store.claim_outbox("A", T0, 10, 60) == []  # due from the requeue time
    assert [e.id for e in await store.claim_outbox("A", T0 + minutes(1), 10, 60)] == [a, b]
    assert await store.requeue([a], T0) == 0  # only failed or rejected rows move


@pytest.mark.parametrize("method", ["mark_sent", "mark_retry", "mark_rejected", "mark_failed"])
async def test_marking_an_unknown_row_is_an_error(store: AnyStore, method: str) -> None:
    args: dict[str, tuple[Any, ...]] = {
        "mark_sent": (T0, None),
        "mark_retry": (T0, "x"),
        "mark_rejected": (T0, "x"),
        "mark_failed": (T0, "x"),
    }
    with pytest.raises(StoreError, match="no outbox row 424242"):
        await getattr(store, method)(424242, *args[method])


async def test_an_expired_sending_lease_returns_the_row(store: AnyStore) -> None:
    [row_id] = await enqueue(store, 1)
    assert len(await store.claim_outbox("crashed", T0, 10, 30)) == 1
    assert await store.claim_outbox("B", T0 + timedelta(seconds=29), 10, 30) == []
    [taken] = await store.claim_outbox("B", T0 + timedelta(seconds=30), 10, 30)
    assert (taken.id, taken.status, taken.attempts) == (row_id, "sending", 2)


async def test_list_outbox_filters_by_status(store: AnyStore) -> None:
    a, b, c = await enqueue(store, 3)
    await store.claim_outbox("A", T0, 1, 60)
    await store.mark_rejected(a, T0, "no")
    await store.claim_outbox("A", T0, 1, 60)
    assert [r.id for r in await store.list_outbox(("pending",))] == [c]
    assert [r.id for r in await store.list_outbox(("sending",))] == [b]
    assert [r.id for r in await store.list_outbox(("rejected", "pending"))] == [a, c]
    assert await store.list_outbox(()) == []


async def test_the_stored_alert_comes_back_whole(store: AnyStore) -> None:
    full = Alert(
        kind="news",
        key="deepseek-shock",
        title="딥시크 충격에 엔비디아 16.97% 급락",
        created_at=T0,
        link="https://www.hankyung.com/article/1",
        lang="ko",
        published=T0 - minutes(3),
        stance=(Stance("nvidia", StanceLabel.BEARISH, -0.62, 0.8, ("주가는 16.97% 급락했다",)),),
        prices=(PriceContext("NVDA", 118.42, T0, "yahoo", 142.62, -16.97, Session.REGULAR),),
        sources=(SourceRef("hankyung", "한국경제", "딥시크 충격", "https://x", "ko"),),
        urgency=("속보",),
    )
    await store.commit_poll(feed("a"), [], [], [NewOutboxEntry("desk", full, "deepseek-shock")])
    [row] = await store.claim_outbox("A", T0, 1, 60)
    assert row.alert == full


async def test_a_sent_alert_can_be_read_back_until_pruned(store: AnyStore) -> None:
    """Follow-ups read the alert they follow from its sent row, not from memory."""
    await store.commit_poll(feed("a"), [], [], [entry("desk", "k1"), entry("team", "k1")])
    assert await store.sent_alert("desk", "k1") is None  # queued, not sent
    desk, team = await store.claim_outbox("A", T0, 10, 60)
    await store.mark_sent(desk.id, T0 + minutes(1), "m1")
    await store.mark_rejected(team.id, T0 + minutes(1), "400 Bad Request")
    assert await store.sent_alert("desk", "k1") == desk.alert
    assert await store.sent_alert("team", "k1") is None  # rejected: never delivered
    assert await store.sent_alert("desk", "k2") is None
    await store.prune(T0 + minutes(2))
    assert await store.sent_alert("desk", "k1") is None


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_claimers_never_share_an_outbox_row(store_url: str, clock: Any) -> None:
    stores = [open_store(store_url, clock=clock, instance_id=f"w{i}") for i in range(4)]
    for s in stores:
        await s.open()
    try:
        ids = await enqueue(stores[0], 60)
        claims: list[tuple[str, int]] = []

        async def worker(s: AnyStore, owner: str) -> None:
            while batch := await s.claim_outbox(owner, T0, 4, 300):
                claims.extend((owner, e.id) for e in batch)
                for e in batch:
                    await s.mark_sent(e.id, T0, None)

        await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate(stores)))
        claimed_ids = [i for _, i in claims]
        assert sorted(claimed_ids) == ids  # every row exactly once
        assert await stores[0].outbox_depth() == 0
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_claimers_never_hold_one_feed_together(store_url: str, clock: Any) -> None:
    stores = [open_store(store_url, clock=clock, instance_id=f"w{i}") for i in range(4)]
    for s in stores:
        await s.open()
    names = [f"feed-{i}" for i in range(12)]
    holder: dict[str, str] = {}
    overlaps: list[str] = []
    polls = 0

    async def worker(s: AnyStore, owner: str) -> None:
        nonlocal polls
        for _ in range(8):
            for name in await s.claim_feeds(owner, names, T0, 300):
                if name in holder:
                    overlaps.append(f"{name}: {holder[name]} and {owner}")
                holder[name] = owner
                await asyncio.sleep(0)
                await s.commit_poll(feed(name, next_poll_at=T0), [], [], [])
                polls += 1
                del holder[name]  # before the release, after which others may claim
                await s.release_feed(owner, name)

    try:
        await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate(stores)))
    finally:
        for s in stores:
            await s.close()
    assert overlaps == []
    assert polls >= len(names)


# --------------------------------------------------------------------------- retention, health


async def test_prune_drops_old_items_stories_and_finished_rows(store: AnyStore, clock: Any) -> None:
    old = T0 - timedelta(days=40)
    clock.set(old)  # the outbox stamps rows with the store's clock
    await store.commit_poll(
        feed("a"),
        [seen("a", "old", at=old), seen("a", "new", at=T0)],
        [story("old", at=old), story("new", at=T0)],
        [entry("desk", "sent-old"), entry("desk", "pending-old")],
    )
    [sent_old] = await store.claim_outbox("A", old, 1, 60)
    await store.mark_sent(sent_old.id, old, None)
    clock.set(T0)
    await store.commit_poll(feed("a"), [], [], [entry("desk", "sent-new")])
    for e in await store.claim_outbox("A", T0, 5, 60):  # pending-old stays unfinished
        if e.dedupe_key == "sent-new":
            await store.mark_sent(e.id, T0, None)

    removed = await store.prune(T0 - timedelta(days=10))
    assert removed == 3  # the old item, the old story, the old sent row
    assert await store.known_items("a", ["old", "new"]) == {"new": "h1"}
    assert [s.key for s in await store.recent_stories(old)] == ["new"]
    left = {r.dedupe_key: r.status for r in await store.list_outbox(("pending", "sending", "sent"))}
    assert left == {"pending-old": "sending", "sent-new": "sent"}
    assert await store.prune(T0 - timedelta(days=10)) == 0


async def test_destination_health_round_trips(store: AnyStore) -> None:
    gone = DestinationState(
        name="trading-desk",
        broken=True,
        reason=f"404 from {WEBHOOK}",
        last_success=T0,
        last_error="Unknown Webhook (10015)",
        extra={"rate_remaining": 4, "bucket": "abc"},
    )
    await store.save_destination(DestinationState(name="alerts"))
    await store.save_destination(gone)
    got = await store.load_destinations()
    assert [d.name for d in got] == ["alerts", "trading-desk"]
    assert got[0] == DestinationState(name="alerts")
    desk = got[1]
    assert (desk.broken, desk.last_success, desk.last_error, desk.extra) == (
        True,
        T0,
        "Unknown Webhook (10015)",
        {"rate_remaining": 4, "bucket": "abc"},
    )
    assert desk.reason is not None and "SECRETtoken" not in desk.reason
    await store.save_destination(
        DestinationState(name="trading-desk", last_success=T0 + minutes(1))
    )
    assert (await store.load_destinations())[1].broken is False


async def test_times_come_back_as_aware_utc(store: AnyStore) -> None:
    from zoneinfo import ZoneInfo

    seoul = datetime(2025, 1, 27, 23, 30, 0, 1, tzinfo=ZoneInfo("Asia/Seoul"))
    await store.save_feed_state(feed("a", last_success=seoul))
    loaded = await store.load_feed_state("a")
    assert loaded is not None and loaded.last_success == seoul
    assert loaded.last_success.utcoffset() == timedelta(0)
    assert loaded.last_success.astimezone(UTC).hour == 14


async def test_enqueue_adds_alerts_from_no_feed_once(store: AnyStore, clock: Any) -> None:
    move = NewOutboxEntry("desk", alert("move:NVDA:2025-01-27:-5"), "move:NVDA:2025-01-27:-5")
    ids = await store.enqueue([move, entry("phone", "move:NVDA:2025-01-27:-5")])
    assert len(ids) == 2
    assert await store.enqueue([move]) == []
    assert await store.enqueue([]) == []
    rows = await store.list_outbox()
    assert [(r.id, r.destination, r.created_at) for r in rows] == [
        (ids[0], "desk", clock.now()),
        (ids[1], "phone", clock.now()),
    ]
    assert await store.load_feed_states() == []  # no feed is touched


def test_both_backends_satisfy_the_store_port() -> None:
    from monitor.ports import Store
    from monitor.store.postgres import PostgresStore
    from monitor.store.sqlite import SqliteStore

    missing = {
        cls.__name__: [m for m in dir(Store) if not m.startswith("_") and not hasattr(cls, m)]
        for cls in (SqliteStore, PostgresStore)
    }
    assert missing == {"SqliteStore": [], "PostgresStore": []}


async def test_release_outbox_hands_back_only_the_owners_unconfirmed_claims(
    store: AnyStore,
) -> None:
    await store.enqueue([entry("desk", f"k{i}") for i in range(4)])
    a = await store.claim_outbox("A", T0, 2, 600)
    b = await store.claim_outbox("B", T0, 1, 600)
    await store.mark_sent(a[0].id, T0, "m1")
    assert await store.release_outbox("A", T0) == 1
    # A's unsent claim is due again at once; B's claim and A's sent row stay as they were.
    again = await store.claim_outbox("C", T0, 10, 600)
    assert sorted(e.dedupe_key for e in again) == sorted([a[1].dedupe_key, "k3"])
    statuses = {e.dedupe_key: e.status for e in await store.list_outbox(("sending", "sent"))}
    assert statuses[a[0].dedupe_key] == "sent"
    assert statuses[b[0].dedupe_key] == "sending"
