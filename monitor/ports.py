"""Ports: the contracts between the pipelines and the adapters.

Pipelines (`monitor.app`) depend on these protocols; adapters (`monitor.store`,
`monitor.feeds`, `monitor.prices`, `monitor.notifiers`) implement them and never
import each other. Records that cross a port are plain dataclasses defined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from monitor.core.models import Alert, PriceTick
from monitor.core.pricebook import SessionInfo

# --------------------------------------------------------------------------- store records


@dataclass(slots=True)
class FeedState:
    """What the store remembers about one feed between polls."""

    name: str
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    initialized: bool = False  # the first successful fetch has been recorded
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None  # already redacted
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    interval_s: float | None = None  # the current adaptive interval
    items_total: int = 0


@dataclass(frozen=True, slots=True)
class SeenItem:
    """An item a feed has shown us. `content_hash` changes when the item is updated."""

    feed: str
    item_id: str
    content_hash: str
    first_seen: datetime
    published: datetime | None = None
    story_key: str | None = None


@dataclass(frozen=True, slots=True)
class StoryRecord:
    """A story alerted on recently: its key, its normalised title and its sources."""

    key: str
    title_norm: str
    first_seen: datetime
    sources: tuple[dict[str, Any], ...] = ()  # SourceRef.to_dict() items
    figures: tuple[str, ...] = ()  # numbers in the title: different figures, different story


@dataclass(frozen=True, slots=True)
class NewOutboxEntry:
    """An alert to enqueue for one destination."""

    destination: str
    alert: Alert
    dedupe_key: str  # unique per destination: the same key is enqueued once


OutboxStatus = Literal["pending", "sending", "sent", "failed", "rejected"]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row of the outbox."""

    id: int
    destination: str
    alert: Alert
    dedupe_key: str
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None
    message_ref: str | None = None  # the destination's id for the sent message, if any


@dataclass(slots=True)
class DestinationState:
    """Health of one notifier destination."""

    name: str
    broken: bool = False
    reason: str | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """Durable state: feed validators and health, seen items, stories, the outbox.

    All methods may raise `StoreError`. Timestamps are aware UTC. Implementations:
    SQLite (one process) and PostgreSQL (several processes on one database).
    """

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""

    # feeds
    async def load_feed_state(self, name: str) -> FeedState | None: ...

    async def load_feed_states(self) -> list[FeedState]: ...

    async def save_feed_state(self, state: FeedState) -> None: ...

    async def claim_feeds(
        self,
        owner: str,
        names: Sequence[str],
        now: datetime,
        lease_s: float,
        limit: int | None = None,
    ) -> list[str]:
        """Lease the due feeds among `names` to `owner` until now + lease_s.

        A feed is due when its `next_poll_at` is missing or <= now, and free when
        nobody holds an unexpired lease on it. With `limit`, at most that many
        are leased, the longest overdue first (never polled counts as longest).
        Returns the names leased.
        """

    async def release_feed(self, owner: str, name: str) -> None: ...

    # items
    async def known_items(self, feed: str, item_ids: Sequence[str]) -> dict[str, str]:
        """Map of item_id -> content_hash for the ids of `feed` already seen."""

    async def commit_poll(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
    ) -> list[int]:
        """In one transaction: save `state`, mark `items` seen, upsert `stories`
        and enqueue `alerts` (skipping a destination + dedupe_key already queued).
        Returns the ids of the outbox rows created."""

    async def commit_poll_claimed(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
        owner: str,
        lease_s: float,
    ) -> list[OutboxEntry]:
        """`commit_poll`, with the outbox rows it creates already claimed by `owner`
        (`sending`, leased until now + lease_s, one attempt), as `claim_outbox` would
        leave them: the caller delivers them without a claim of its own. Returns those
        rows in the order of `alerts`."""

    async def enqueue(self, alerts: Sequence[NewOutboxEntry]) -> list[int]:
        """Enqueue alerts that belong to no feed poll (price moves, follow-ups), skipping a
        destination + dedupe_key already queued. Returns the ids of the rows created."""

    async def recent_stories(self, since: datetime) -> list[StoryRecord]: ...

    async def prune(self, before: datetime) -> int:
        """Drop seen items, stories and finished outbox rows older than `before`."""

    # outbox
    async def claim_outbox(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[OutboxEntry]:
        """Claim up to `limit` due rows (pending, or sending with an expired lease).

        Claimed rows become `sending`, leased to `owner` until now + lease_s, with
        `attempts` counted up by one; oldest first. Two claimers never get one row.
        """

    async def release_outbox(self, owner: str, now: datetime) -> int:
        """Hand back every row `owner` holds as `sending`: pending again, due at `now`.
        Called on a graceful stop; a row whose send was in flight may go out twice."""

    async def mark_sent(self, entry_id: int, now: datetime, message_ref: str | None) -> None: ...

    async def mark_retry(self, entry_id: int, next_attempt_at: datetime, error: str) -> None: ...

    async def mark_rejected(self, entry_id: int, now: datetime, error: str) -> None: ...

    async def mark_failed(self, entry_id: int, now: datetime, error: str) -> None:
        """Give up on a row after too many attempts; `requeue` can bring it back."""

    async def requeue(self, entry_ids: Sequence[int], now: datetime) -> int:
        """Put failed or rejected rows back to pending. Returns how many moved."""

    async def list_outbox(
        self, statuses: Sequence[OutboxStatus] = ("pending", "sending", "failed", "rejected")
    ) -> list[OutboxEntry]: ...

    async def outbox_depth(self) -> int: ...

    async def sent_alert(self, destination: str, dedupe_key: str) -> Alert | None:
        """The alert the row `destination` + `dedupe_key` delivered, while the row is
        kept (`prune`); None if there is no such row or it was never sent."""

    # destinations
    async def load_destinations(self) -> list[DestinationState]: ...

    async def save_destination(self, state: DestinationState) -> None: ...


# --------------------------------------------------------------------------- prices


class PriceSource(Protocol):
    """Produces price ticks for a set of symbols.

    `fetch` returns what is new since the previous call (polling sources) or what
    arrived meanwhile (streaming sources). Raises `PriceError` on a bad answer.
    """

    name: str

    async def fetch(self, symbols: Sequence[str]) -> list[PriceTick]: ...

    async def start(self) -> None:
        """Open connections and background tasks (streaming sources). Idempotent."""

    async def aclose(self) -> None:
        """Cancel background tasks and close connections. Idempotent."""

    def session_info(self) -> dict[str, SessionInfo]:
        """Previous close and trading periods learnt so far, by symbol (maybe empty).

        Feed them to `PriceBook.set_session_info` after each fetch.
        """


# --------------------------------------------------------------------------- notifiers


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of a successful send."""

    message_ref: str | None = None  # e.g. a Discord message id, for later edits
    wait_s: float | None = None  # the destination asked for this pause before the next send


class Notifier(Protocol):
    """Delivers rendered alerts to one destination.

    `send` raises `RetryableDeliveryError` (429, 5xx, timeout), `DestinationGoneError`
    or `RejectedDeliveryError`. Class attributes declare the protocol's limits.
    """

    kind: ClassVar[str]
    max_per_window: ClassVar[int]  # at most this many sends ...
    window_s: ClassVar[float]  # ... per this many seconds
    can_edit: ClassVar[bool]

    name: str

    async def send(self, alert: Alert) -> Delivery: ...

    async def edit(self, message_ref: str, alert: Alert) -> Delivery:
        """Replace an earlier message; only when `can_edit`."""

    async def aclose(self) -> None: ...
