"""The `Store` on PostgreSQL, for several instances sharing one database.

A small asyncpg pool. Feeds and outbox rows are leased with
`SELECT ... FOR UPDATE SKIP LOCKED` plus an expiry time: two instances never
hold one lease at once, and the leases of an instance that died run out and
are taken over. Migrations run under a transaction-scoped advisory lock, so
instances that start together apply each migration exactly once. An optional
schema (`?schema=name` in the URL) keeps the tables apart from anything else in
the database.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from monitor.core.clock import Clock
from monitor.core.errors import StoreError
from monitor.core.models import Alert
from monitor.core.redact import redact
from monitor.logs import get_logger
from monitor.ports import (
    DestinationState,
    FeedState,
    NewOutboxEntry,
    OutboxEntry,
    OutboxStatus,
    SeenItem,
    StoryRecord,
)
from monitor.store import migrations
from monitor.store._codec import (
    alert_from_json,
    alert_to_json,
    claimed_rows,
    dump_json,
    load_json,
    require_aware,
    utc_or_none,
)

log = get_logger(__name__)

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OPEN_STATUSES: tuple[OutboxStatus, ...] = ("pending", "sending", "failed", "rejected")
_FINISHED = ["sent", "failed", "rejected"]
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Turn driver and socket errors into StoreError (the port's one error)."""
    try:
        yield
    except _DB_ERRORS as e:
        raise StoreError(f"postgresql: {redact(str(e)) or type(e).__name__}") from e


def _count(status: str) -> int:
    """The row count in a command tag such as `UPDATE 3`."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresStore:
    """`Store` on PostgreSQL. Use `await open()` or `async with`."""

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        clock: Clock,
        instance_id: str,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 4,
        command_timeout_s: float = 30.0,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StoreError(f"invalid schema name {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.instance_id = instance_id
        self._clock = clock
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout_s = command_timeout_s
        self._pool: Any = None
        # Feeds known to have their lease row (rows are never deleted): each claim, four
        # times a second per instance, inserts only the rows of feeds new to this process.
        self._lease_rows: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": f'"{self.schema}"'} if self.schema else {}
        with _translate():
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                command_timeout=self._command_timeout_s,
                server_settings=settings,
            )
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        log.info("store_opened", backend="postgresql", dsn=redact(self.dsn), schema=self.schema)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await pool.close()
        except _DB_ERRORS:
            pool.terminate()

    async def _migrate(self) -> None:
        migrations.check_order(migrations.POSTGRES)
        lock_key = f"semis-monitor:migrate:{self.schema or 'public'}"
        async with self._tx() as conn:
            # Held until this transaction ends: concurrent open()s queue here.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key)
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            await conn.execute(migrations.SCHEMA_VERSION_POSTGRES)
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for m in migrations.pending(migrations.POSTGRES, int(current)):
                for statement in m.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    require_aware(self._clock.now()),
                )
                log.info("store_migrated", backend="postgresql", version=m.version, name=m.name)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError("the store is not open")
        with _translate():
            async with self._pool.acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def ping(self) -> bool:
        try:
            async with self._conn() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except StoreError:
            return False

    async def schema_version(self) -> int:
        """The highest migration applied to this database."""
        async with self._conn() as conn:
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    # ------------------------------------------------------------------ feeds

    _FEED_COLUMNS = (
        "name, url, etag, last_modified, initialized, last_success, last_attempt, last_error, "
        "consecutive_failures, next_poll_at, interval_s, items_total"
    )

    @staticmethod
    def _feed_from_row(r: Any) -> FeedState:
        return FeedState(
            name=r["name"],
            url=r["url"],
            etag=r["etag"],
            last_modified=r["last_modified"],
            initialized=bool(r["initialized"]),
            last_success=r["last_success"],
            last_attempt=r["last_attempt"],
            last_error=r["last_error"],
            consecutive_failures=int(r["consecutive_failures"]),
            next_poll_at=r["next_poll_at"],
            interval_s=r["interval_s"],
            items_total=int(r["items_total"]),
        )

    async def load_feed_state(self, name: str) -> FeedState | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE name = $1", name
            )
        return None if row is None else self._feed_from_row(row)

    async def load_feed_states(self) -> list[FeedState]:
        async with self._conn() as conn:
            rows = await conn.fetch(f"SELECT {self._FEED_COLUMNS} FROM feeds ORDER BY name")
        return [self._feed_from_row(r) for r in rows]

    @staticmethod
    async def _save_feed(conn: Any, s: FeedState) -> None:
        await conn.execute(
            f"""INSERT INTO feeds ({PostgresStore._FEED_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (name) DO UPDATE SET
                    url = excluded.url, etag = excluded.etag,
                    last_modified = excluded.last_modified,
                    initialized = excluded.initialized,
                    last_success = excluded.last_success,
                    last_attempt = excluded.last_attempt,
                    last_error = excluded.last_error,
                    consecutive_failures = excluded.consecutive_failures,
                    next_poll_at = excluded.next_poll_at,
                    interval_s = excluded.interval_s,
                    items_total = excluded.items_total""",
            s.name,
            s.url,
            s.etag,
            s.last_modified,
            s.initialized,
            utc_or_none(s.last_success),
            utc_or_none(s.last_attempt),
            None if s.last_error is None else redact(s.last_error),
            s.consecutive_failures,
            utc_or_none(s.next_poll_at),
            s.interval_s,
            s.items_total,
        )

    async def save_feed_state(self, state: FeedState) -> None:
        async with self._tx() as conn:
            await self._save_feed(conn, state)

    async def claim_feeds(
        self,
        owner: str,
        names: Sequence[str],
        now: datetime,
        lease_s: float,
        limit: int | None = None,
    ) -> list[str]:
        now = require_aware(now)
        until = now + timedelta(seconds=lease_s)
        # Sorted, so that concurrent inserts of new lease rows take their locks
        # in one order and cannot deadlock.
        wanted = sorted(set(names))
        if not wanted:
            return []
        missing = [n for n in wanted if n not in self._lease_rows]
        async with self._conn() as conn:
            if missing:
                await conn.execute(
                    "INSERT INTO feed_leases (name) SELECT unnest($1::text[]) "
                    "ON CONFLICT (name) DO NOTHING",
                    missing,
                )
                self._lease_rows.update(missing)
            rows = await conn.fetch(
                """WITH free AS (
                       SELECT l.name FROM feed_leases l LEFT JOIN feeds f ON f.name = l.name
                       WHERE l.name = ANY($1::text[])
                         AND (l.lease_until IS NULL OR l.lease_until <= $2)
                         AND (f.next_poll_at IS NULL OR f.next_poll_at <= $2)
                       ORDER BY f.next_poll_at NULLS FIRST, l.name
                       LIMIT $5
                       FOR UPDATE OF l SKIP LOCKED
                   )
                   UPDATE feed_leases SET owner = $3, lease_until = $4
                   FROM free WHERE feed_leases.name = free.name
                   RETURNING feed_leases.name""",
                wanted,
                now,
                owner,
                until,
                limit,  # NULL: no limit
            )
        return sorted(r["name"] for r in rows)

    async def release_feed(self, owner: str, name: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE feed_leases SET owner = NULL, lease_until = NULL "
                "WHERE name = $1 AND owner = $2",
                name,
                owner,
            )

    # ------------------------------------------------------------------ items and stories

    async def known_items(self, feed: str, item_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT item_id, content_hash FROM seen_items "
                "WHERE feed = $1 AND item_id = ANY($2::text[])",
                feed,
                ids,
            )
        return {r["item_id"]: r["content_hash"] for r in rows}

    async def commit_poll(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
    ) -> list[int]:
        made = await self._commit_poll(state, items, stories, alerts, None)
        return [i for _, i in made]

    async def commit_poll_claimed(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
        owner: str,
        lease_s: float,
    ) -> list[OutboxEntry]:
        now = require_aware(self._clock.now())
        made = await self._commit_poll(
            state, items, stories, alerts, (owner, now + timedelta(seconds=lease_s)), now
        )
        return claimed_rows(made, now)

    async def _commit_poll(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
        lease: tuple[str, datetime] | None,
        now: datetime | None = None,
    ) -> list[tuple[NewOutboxEntry, int]]:
        created_at = require_aware(now or self._clock.now())
        async with self._tx() as conn:
            await self._save_feed(conn, state)
            if items:
                await conn.executemany(
                    """INSERT INTO seen_items
                           (feed, item_id, content_hash, first_seen, published, story_key)
                       VALUES ($1, $2, $3, $4, $5, $6)
                       ON CONFLICT (feed, item_id) DO UPDATE SET
                           content_hash = excluded.content_hash,
                           published = COALESCE(excluded.published, seen_items.published),
                           story_key = COALESCE(excluded.story_key, seen_items.story_key)""",
                    [
                        (
                            i.feed,
                            i.item_id,
                            i.content_hash,
                            require_aware(i.first_seen),
                            utc_or_none(i.published),
                            i.story_key,
                        )
                        for i in items
                    ],
                )
            for s in stories:
                await conn.execute(
                    """INSERT INTO stories (key, title_norm, first_seen, sources, figures)
                       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
                       ON CONFLICT (key) DO UPDATE SET
                           title_norm = excluded.title_norm,
                           first_seen = LEAST(stories.first_seen, excluded.first_seen),
                           sources = excluded.sources,
                           figures = excluded.figures""",
                    s.key,
                    s.title_norm,
                    require_aware(s.first_seen),
                    dump_json(list(s.sources)),
                    dump_json(list(s.figures)),
                )
            return await self._insert_outbox(conn, alerts, created_at, lease)

    async def enqueue(self, alerts: Sequence[NewOutboxEntry]) -> list[int]:
        created_at = require_aware(self._clock.now())
        async with self._tx() as conn:
            made = await self._insert_outbox(conn, alerts, created_at, None)
        return [i for _, i in made]

    @staticmethod
    async def _insert_outbox(
        conn: Any,
        entries: Sequence[NewOutboxEntry],
        created_at: datetime,
        lease: tuple[str, datetime] | None,
    ) -> list[tuple[NewOutboxEntry, int]]:
        """The rows created (a destination + dedupe_key already queued is skipped);
        with `lease` (owner, until), created as that owner's claim."""
        made: list[tuple[NewOutboxEntry, int]] = []
        owner, until = lease if lease is not None else (None, None)
        status, attempts = ("pending", 0) if lease is None else ("sending", 1)
        for a in entries:
            new_id = await conn.fetchval(
                """INSERT INTO outbox (destination, dedupe_key, alert, status, created_at,
                                     lease_owner, lease_until, attempts)
                   VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
                   ON CONFLICT (destination, dedupe_key) DO NOTHING
                   RETURNING id""",
                a.destination,
                a.dedupe_key,
                alert_to_json(a.alert),
                status,
                created_at,
                owner,
                until,
                attempts,
            )
            if new_id is not None:
                made.append((a, int(new_id)))
        return made

    async def recent_stories(self, since: datetime) -> list[StoryRecord]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT key, title_norm, first_seen, sources::text AS sources, "
                "figures::text AS figures FROM stories WHERE first_seen >= $1 "
                "ORDER BY first_seen, key",
                require_aware(since),
            )
        return [
            StoryRecord(
                key=r["key"],
                title_norm=r["title_norm"],
                first_seen=r["first_seen"],
                sources=tuple(load_json(r["sources"], [])),
                figures=tuple(load_json(r["figures"], [])),
            )
            for r in rows
        ]

    async def prune(self, before: datetime) -> int:
        before = require_aware(before)
        async with self._tx() as conn:
            n = _count(await conn.execute("DELETE FROM seen_items WHERE first_seen < $1", before))
            n += _count(await conn.execute("DELETE FROM stories WHERE first_seen < $1", before))
            n += _count(
                await conn.execute(
                    "DELETE FROM outbox WHERE status = ANY($1::text[]) AND created_at < $2",
                    _FINISHED,
                    before,
                )
            )
        log.info("store_pruned", backend="postgresql", removed=n)
        return n

    # ------------------------------------------------------------------ outbox

    _OUTBOX_COLUMNS = (
        "id, destination, alert::text AS alert, dedupe_key, status, attempts, created_at, "
        "next_attempt_at, last_error, sent_at, message_ref"
    )

    @staticmethod
    def _entry_from_row(r: Any) -> OutboxEntry:
        return OutboxEntry(
            id=int(r["id"]),
            destination=r["destination"],
            alert=alert_from_json(r["alert"], int(r["id"])),
            dedupe_key=r["dedupe_key"],
            status=r["status"],
            attempts=int(r["attempts"]),
            created_at=r["created_at"],
            next_attempt_at=r["next_attempt_at"] or r["created_at"],
            last_error=r["last_error"],
            sent_at=r["sent_at"],
            message_ref=r["message_ref"],
        )

    async def claim_outbox(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[OutboxEntry]:
        now = require_aware(now)
        if limit <= 0:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                """WITH due AS (
                        SELECT id FROM outbox
                        WHERE status IN ('pending', 'sending')
                          AND ((status = 'pending'
                                AND (next_attempt_at IS NULL OR next_attempt_at <= $1))
                               OR (status = 'sending' AND lease_until <= $1))
                        ORDER BY id
                        LIMIT $2
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE outbox o SET status = 'sending', lease_owner = $3,
                        lease_until = $4, attempts = o.attempts + 1
                    FROM due WHERE o.id = due.id
                    RETURNING o.id, o.destination, o.alert::text AS alert, o.dedupe_key,
                        o.status, o.attempts, o.created_at, o.next_attempt_at, o.last_error,
                        o.sent_at, o.message_ref""",
                now,
                limit,
                owner,
                now + timedelta(seconds=lease_s),
            )
        return sorted((self._entry_from_row(r) for r in rows), key=lambda e: e.id)

    async def release_outbox(self, owner: str, now: datetime) -> int:
        now = require_aware(now)
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL, "
                "next_attempt_at = $1 WHERE status = 'sending' AND lease_owner = $2",
                now,
                owner,
            )
        return _count(status)

    async def _update_entry(self, entry_id: int, sql: str, *params: Any) -> None:
        async with self._conn() as conn:
            status = await conn.execute(sql, entry_id, *params)
        if _count(status) != 1:
            raise StoreError(f"no outbox row {entry_id}")

    async def mark_sent(self, entry_id: int, now: datetime, message_ref: str | None) -> None:
        await self._update_entry(
            entry_id,
            "UPDATE outbox SET status = 'sent', sent_at = $2, message_ref = $3, "
            "lease_owner = NULL, lease_until = NULL WHERE id = $1",
            require_aware(now),
            message_ref,
        )

    async def mark_retry(self, entry_id: int, next_attempt_at: datetime, error: str) -> None:
        await self._update_entry(
            entry_id,
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3, "
            "lease_owner = NULL, lease_until = NULL WHERE id = $1",
            require_aware(next_attempt_at),
            redact(error),
        )

    async def mark_rejected(self, entry_id: int, now: datetime, error: str) -> None:
        await self._update_entry(
            entry_id,
            "UPDATE outbox SET status = 'rejected', next_attempt_at = $2, last_error = $3, "
            "lease_owner = NULL, lease_until = NULL WHERE id = $1",
            require_aware(now),
            redact(error),
        )

    async def mark_failed(self, entry_id: int, now: datetime, error: str) -> None:
        await self._update_entry(
            entry_id,
            "UPDATE outbox SET status = 'failed', next_attempt_at = $2, last_error = $3, "
            "lease_owner = NULL, lease_until = NULL WHERE id = $1",
            require_aware(now),
            redact(error),
        )

    async def requeue(self, entry_ids: Sequence[int], now: datetime) -> int:
        ids = sorted(set(entry_ids))
        if not ids:
            return 0
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, "
                "lease_owner = NULL, lease_until = NULL "
                "WHERE id = ANY($1::bigint[]) AND status IN ('failed', 'rejected')",
                ids,
                require_aware(now),
            )
        return _count(status)

    async def list_outbox(
        self, statuses: Sequence[OutboxStatus] = _OPEN_STATUSES
    ) -> list[OutboxEntry]:
        wanted = list(dict.fromkeys(statuses))
        if not wanted:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE status = ANY($1::text[]) "
                "ORDER BY id",
                wanted,
            )
        return [self._entry_from_row(r) for r in rows]

    async def sent_alert(self, destination: str, dedupe_key: str) -> Alert | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, alert FROM outbox WHERE destination = $1 AND dedupe_key = $2 "
                "AND status = 'sent'",
                destination,
                dedupe_key,
            )
        return alert_from_json(row["alert"], int(row["id"])) if row else None

    async def outbox_depth(self) -> int:
        async with self._conn() as conn:
            n = await conn.fetchval(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
            )
        return int(n)

    # ------------------------------------------------------------------ destinations

    async def load_destinations(self) -> list[DestinationState]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT name, broken, reason, last_success, last_error, extra::text AS extra "
                "FROM destinations ORDER BY name"
            )
        return [
            DestinationState(
                name=r["name"],
                broken=bool(r["broken"]),
                reason=r["reason"],
                last_success=r["last_success"],
                last_error=r["last_error"],
                extra=dict(load_json(r["extra"], {})),
            )
            for r in rows
        ]

    async def save_destination(self, state: DestinationState) -> None:
        async with self._conn() as conn:
            await conn.execute(
                """INSERT INTO destinations (name, broken, reason, last_success, last_error, extra)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                   ON CONFLICT (name) DO UPDATE SET
                       broken = excluded.broken, reason = excluded.reason,
                       last_success = excluded.last_success,
                       last_error = excluded.last_error, extra = excluded.extra""",
                state.name,
                state.broken,
                None if state.reason is None else redact(state.reason),
                utc_or_none(state.last_success),
                None if state.last_error is None else redact(state.last_error),
                dump_json(state.extra),
            )
