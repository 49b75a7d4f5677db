"""The poll pipeline: fetch, parse, find what is new, hand it on, commit.

For each feed: a conditional GET with the stored validators; a 304 only moves
the schedule; a 200 is parsed off the event loop within `fetch.parse_timeout`;
items are compared with the seen items; new ones go to `on_new`, whose stories
and outbox entries are committed in the same transaction as the seen marks
(so an alert is queued exactly when its item is marked seen). The first fetch
of a new feed is recorded without reporting its items, unless the feed says
`backfill = true`. A failure in one feed is recorded in that feed's health
(with a backoff) and never touches the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import aiohttp

from monitor.config import Config, FeedConfig
from monitor.core.clock import Clock
from monitor.core.errors import FeedParseError, FetchError, MonitorError
from monitor.core.models import Article
from monitor.core.redact import redact
from monitor.core.schedule import (
    RandomSource,
    ScheduleLimits,
    next_after_failure,
    next_after_success,
    parse_max_age,
    parse_retry_after,
    poll_interval,
    rhythm_gap,
)
from monitor.feeds.http import Fetcher, FetchResult, HttpStatusError
from monitor.feeds.isolate import parse_bounded
from monitor.feeds.parse import FeedContext, ParsedFeed
from monitor.logs import get_logger
from monitor.ports import FeedState, NewOutboxEntry, OutboxEntry, SeenItem, Store, StoryRecord

log = get_logger(__name__)

FeedStatus = Literal["ok", "not_modified", "error"]
OnNew = Callable[
    [FeedConfig, list[Article]], Awaitable[tuple[list[StoryRecord], list[NewOutboxEntry]]]
]


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one poll of one feed did."""

    feed: str
    status: FeedStatus
    new: tuple[Article, ...] = ()
    error: str | None = None  # redacted
    duration: float = 0.0
    updated: int = 0  # known items whose content changed
    recorded: int = 0  # items marked seen (new and updated, reported or not)
    first_fetch: bool = False  # the feed's first success: items recorded, not reported
    next_poll_at: datetime | None = None
    parser: str = ""


class Poller:
    """Polls the configured feeds into the store. One per process; safe across tasks."""

    def __init__(
        self,
        config: Config,
        store: Store,
        session: aiohttp.ClientSession,
        clock: Clock,
        on_new: OnNew | None = None,
        rng: random.Random | None = None,
        owner: str = "local",
        report_first: bool = False,
        on_committed: Callable[[list[OutboxEntry]], None] | None = None,
    ) -> None:
        self._config = config
        # Given the outbox rows a poll committed, already claimed by `owner` (the
        # daemon's dispatcher, which sends them at once: no claim of its own on the
        # way, nor a wait for the rest of the round).
        self._on_committed = on_committed
        # `monitor poll --once` shows what a feed holds on its first fetch; the daemon
        # records a new feed's items silently (no flood of old stories) unless backfill.
        self._report_first = report_first
        self._inflight = 0  # feeds leased and not yet released, across overlapping rounds
        self._store = store
        self._clock = clock
        self._on_new = on_new
        self._rng: RandomSource = rng or random.Random()
        self._owner = owner
        self._fetcher = Fetcher(session, config.fetch)
        f = config.fetch
        self._limits = ScheduleLimits(
            min_interval=f.min_interval,
            max_interval=f.max_interval,
            max_backoff=f.max_backoff,
            max_retry_after=f.max_retry_after,
        )
        self._feeds = {feed.name: feed for feed in config.feeds if feed.enabled}

    @property
    def feeds(self) -> list[FeedConfig]:
        return list(self._feeds.values())

    async def poll_due(self) -> list[FeedOutcome]:
        """Poll every due feed this instance can lease; release each lease afterwards.

        Feeds are leased a few at a time (up to `fetch.concurrency` in flight), not
        all at once: a lease then covers one poll rather than a queue of them, so it
        cannot run out while its feed still waits for a turn, and instances sharing
        the store each take a share of what is due instead of the first taking all.
        """
        batch = max(1, self._config.fetch.concurrency)
        running: set[asyncio.Task[FeedOutcome]] = set()
        outcomes: list[FeedOutcome] = []
        more = True
        try:
            while True:
                # Top up when half the slots are free: fewer claim queries than one per poll.
                # Rounds may overlap (a slow feed keeps one open): the cap is per poller.
                if more and self._inflight <= batch // 2:
                    want = batch - self._inflight
                    # The slots are taken before the claim is awaited: a round started
                    # meanwhile (every tick starts one) sees them taken.
                    self._inflight += want
                    try:
                        names = await self._store.claim_feeds(
                            self._owner, list(self._feeds), self._clock.now(),
                            self._config.store.lease, limit=want,
                        )  # fmt: skip
                    finally:
                        self._inflight -= want
                    more = len(names) == want
                    self._inflight += len(names)
                    states = await self._preload(names)
                    running |= {asyncio.create_task(self._poll_leased(n, states)) for n in names}
                if not running:
                    return outcomes
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                outcomes += [t.result() for t in done]
        finally:
            for t in running:
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _poll_leased(self, name: str, states: dict[str, FeedState] | None) -> FeedOutcome:
        try:
            return await self._guarded(self._feeds[name], states)
        finally:
            try:
                await self._store.release_feed(self._owner, name)
            except MonitorError as e:
                log.warning("feed_release_failed", feed=name, error=redact(str(e)))
            finally:
                # The slot is free once the lease is: freed before, another poll's claim
                # could land while this release is still on its way to the store.
                self._inflight -= 1

    async def poll_all(self, feeds: Sequence[FeedConfig] | None = None) -> list[FeedOutcome]:
        """Poll every enabled feed (or `feeds`) once, due or not."""
        chosen = self.feeds if feeds is None else list(feeds)
        states = await self._preload([f.name for f in chosen])
        return list(await asyncio.gather(*(self._guarded(f, states) for f in chosen)))

    async def poll_each(
        self, feeds: Sequence[FeedConfig] | None = None
    ) -> AsyncIterator[FeedOutcome]:
        """Like `poll_all`, but yield each outcome as soon as that feed is committed."""
        chosen = self.feeds if feeds is None else list(feeds)
        states = await self._preload([f.name for f in chosen])
        for next_done in asyncio.as_completed([self._guarded(f, states) for f in chosen]):
            yield await next_done

    async def _preload(self, names: Sequence[str]) -> dict[str, FeedState] | None:
        """All stored states of `names` in one query (None: too few to be worth it).

        A name missing from the result has no stored state.
        """
        if len(names) < 8:
            return None
        wanted = set(names)
        return {s.name: s for s in await self._store.load_feed_states() if s.name in wanted}

    async def poll_feed(self, feed: FeedConfig) -> FeedOutcome:
        """Poll one feed. Never raises: every failure becomes an error outcome."""
        return await self._guarded(feed, None)

    async def _guarded(
        self, feed: FeedConfig, preloaded: dict[str, FeedState] | None
    ) -> FeedOutcome:
        started = self._clock.monotonic()
        try:
            if preloaded is None:
                state = await self._store.load_feed_state(feed.name)
            else:
                state = preloaded.get(feed.name)
            return await self._poll(feed, started, state)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one feed's bug or a store failure must not stop the others
            error = redact(f"{type(e).__name__}: {e}")
            log.error("feed_poll_crashed", feed=feed.name, error=error)
            return FeedOutcome(
                feed.name, "error", error=error, duration=self._clock.monotonic() - started
            )

    # ------------------------------------------------------------------ steps

    async def _poll(self, feed: FeedConfig, started: float, state: FeedState | None) -> FeedOutcome:
        fresh = state is None  # never stored: no item of it can have been seen
        if state is None:
            state = FeedState(name=feed.name, url=feed.url)
        elif state.url != feed.url:
            # A new URL is a new resource: its validators mean nothing, and its
            # backlog is recorded silently like any new feed's.
            state.url, state.etag, state.last_modified = feed.url, None, None
            state.initialized = False
        now = self._clock.now()
        state.last_attempt = now
        try:
            result = await self._fetcher.fetch(feed.url, state.etag, state.last_modified)
        except FetchError as e:
            return await self._failed(feed, state, e, started)
        if result.not_modified:
            return await self._not_modified(feed, state, result, started)
        try:
            parsed = await parse_bounded(
                result.body, result.headers, self._context(feed, result),
                timeout=self._config.fetch.parse_timeout,
            )  # fmt: skip
        except FeedParseError as e:
            return await self._failed(feed, state, e, started)
        return await self._record(feed, state, result, parsed, started, fresh)

    def _context(self, feed: FeedConfig, result: FetchResult) -> FeedContext:
        return FeedContext(
            name=feed.name,
            url=result.url,
            lang=feed.lang,
            tz=ZoneInfo(feed.timezone),
            source=feed.source,
        )

    def _interval(self, feed: FeedConfig, state: FeedState) -> float:
        base = state.interval_s if state.interval_s else feed.interval
        return poll_interval(base, None, self._limits, adaptive=False)

    async def _not_modified(
        self, feed: FeedConfig, state: FeedState, result: FetchResult, started: float
    ) -> FeedOutcome:
        now = self._clock.now()
        interval = self._interval(feed, state)
        state.etag = result.headers.get("etag", state.etag)
        state.last_modified = result.headers.get("last-modified", state.last_modified)
        state.last_success, state.last_error, state.consecutive_failures = now, None, 0
        state.next_poll_at = next_after_success(
            now, interval, parse_max_age(result.headers.get("cache-control")), self._limits
        )
        await self._store.save_feed_state(state)
        log.debug("feed_not_modified", feed=feed.name)
        return FeedOutcome(
            feed.name,
            "not_modified",
            duration=self._clock.monotonic() - started,
            next_poll_at=state.next_poll_at,
        )

    async def _record(
        self,
        feed: FeedConfig,
        state: FeedState,
        result: FetchResult,
        parsed: ParsedFeed,
        started: float,
        fresh: bool = False,
    ) -> FeedOutcome:
        now = self._clock.now()
        articles = parsed.articles
        known = (
            await self._store.known_items(feed.name, [a.item_id for a in articles])
            if articles and not fresh
            else {}
        )
        new = [a for a in articles if a.item_id not in known]
        updated = [a for a in articles if a.item_id in known and known[a.item_id] != a.content_hash]
        first = not state.initialized
        report = [] if (first and not feed.backfill and not self._report_first) else new
        report = [dataclasses.replace(a, seen_at=now) for a in report]
        stories: list[StoryRecord] = []
        alerts: list[NewOutboxEntry] = []
        if report and self._on_new is not None:
            try:
                stories, alerts = await self._on_new(feed, report)
            except MonitorError as e:
                # Nothing is marked seen, so these items come back on the next poll.
                return await self._failed(feed, state, e, started)
            except Exception as e:  # a bug on one article: back off like any failure
                log.error("feed_analysis_crashed", feed=feed.name, exc_info=True)
                failure = FeedParseError(redact(f"analysis failed: {type(e).__name__}: {e}"))
                return await self._failed(feed, state, failure, started)
        items = [
            SeenItem(feed.name, a.item_id, a.content_hash, now, a.published) for a in new + updated
        ]
        gap = rhythm_gap([a.published for a in articles], now)
        interval = poll_interval(feed.interval, gap, self._limits, adaptive=feed.adaptive)
        state.initialized = True
        state.etag = result.headers.get("etag")
        state.last_modified = result.headers.get("last-modified")
        state.last_success, state.last_error, state.consecutive_failures = now, None, 0
        state.interval_s = interval
        state.next_poll_at = next_after_success(
            now, interval, parse_max_age(result.headers.get("cache-control")), self._limits
        )
        state.items_total += len(new)
        if alerts and self._on_committed is not None:
            lease = self._config.store.lease
            handed = await self._store.commit_poll_claimed(
                state, items, stories, alerts, self._owner, lease
            )
            if handed:
                self._on_committed(handed)
        else:
            await self._store.commit_poll(state, items, stories, alerts)
        log.info(
            "feed_polled",
            feed=feed.name,
            items=len(articles),
            new=len(new),
            reported=len(report),
            updated=len(updated),
            parser=parsed.parser,
        )
        return FeedOutcome(
            feed.name,
            "ok",
            new=tuple(report),
            duration=self._clock.monotonic() - started,
            updated=len(updated),
            recorded=len(items),
            first_fetch=first and not feed.backfill,
            next_poll_at=state.next_poll_at,
            parser=parsed.parser,
        )

    async def _failed(
        self, feed: FeedConfig, state: FeedState, error: MonitorError, started: float
    ) -> FeedOutcome:
        now = self._clock.now()
        text = redact(str(error)) or type(error).__name__
        retry_after = None
        if isinstance(error, HttpStatusError):
            retry_after = parse_retry_after(error.retry_after, now)
        state.consecutive_failures += 1
        state.last_error = text
        state.next_poll_at = next_after_failure(
            now,
            state.consecutive_failures,
            self._interval(feed, state),
            retry_after,
            self._limits,
            self._rng,
        )
        await self._store.save_feed_state(state)
        log.warning(
            "feed_failed",
            feed=feed.name,
            error=text,
            failures=state.consecutive_failures,
            next_poll_at=state.next_poll_at.isoformat(),
        )
        return FeedOutcome(
            feed.name,
            "error",
            error=text,
            duration=self._clock.monotonic() - started,
            next_poll_at=state.next_poll_at,
        )
