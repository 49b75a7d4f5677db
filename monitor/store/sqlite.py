"""The `Store` on one SQLite file: the default for a single instance.

One dedicated worker thread owns the one connection, so every blocking call
runs off the event loop and calls are serialised in the order they were made.
WAL with `synchronous=NORMAL` keeps every committed transaction through a
process crash. Write transactions start with `BEGIN IMMEDIATE`, which takes the
database's write lock up front: claims stay exclusive even if a second process
opens the same file.

SQLite copies the WAL back into the database inside whichever commit makes the log
pass 1,000 pages, and that commit then takes several milliseconds longer (the copy
and its fsync) while an alert may be waiting on it. Here no commit does: a second
connection on a thread of its own runs a passive checkpoint every
`checkpoint_s` seconds, which never blocks the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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
    from_us,
    from_us_required,
    load_json,
    to_us,
)

log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_OPEN_STATUSES: tuple[OutboxStatus, ...] = ("pending", "sending", "failed", "rejected")
_FINISHED = ("sent", "failed", "rejected")
# SQLite caps bound parameters per statement; stay well below it.
_CHUNK = 500
CHECKPOINT_S = 2.0  # how often the WAL is copied back into the database, off the write path


def _chunks(values: Sequence[str], size: int = _CHUNK) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class SqliteStore:
    """`Store` on a SQLite file (or `:memory:`). Use `await open()` or `async with`."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock,
        instance_id: str,
        busy_timeout_s: float = 10.0,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> None:
        self.path = str(path)
        self.instance_id = instance_id
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._checkpoint_s = checkpoint_s
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        # Feeds known to have their lease row (rows are never deleted): each claim, four
        # times a second, inserts only the rows of feeds new to this process.
        self._lease_rows: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(self._connect)
        except BaseException:
            await self.close()
            raise
        if self.path != ":memory:":
            self._checkpointer = asyncio.create_task(self._checkpoints(), name="sqlite-checkpoint")
        log.info("store_opened", backend="sqlite", path=self.path)

    async def _checkpoints(self) -> None:
        """Copy the WAL back into the database every `checkpoint_s` seconds, from a
        connection and thread of its own. A passive checkpoint copies what no reader
        still needs and waits for nobody; what it leaves, the next one takes."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        conn: list[sqlite3.Connection] = []

        def checkpoint() -> None:
            if not conn:
                conn.append(
                    sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                )
            conn[0].execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(self._checkpoint_s)
                try:
                    await loop.run_in_executor(executor, checkpoint)
                except sqlite3.Error as e:  # the next round tries again; commits carry on
                    log.warning("store_checkpoint_failed", error=redact(str(e)))
        finally:

            def release() -> None:
                for c in conn:
                    c.close()

            executor.submit(release)  # after a checkpoint still running, on its thread
            executor.shutdown(wait=False)

    async def close(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.cancel()
            await asyncio.gather(checkpointer, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()

        def shutdown() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await loop.run_in_executor(executor, shutdown)
        finally:
            executor.shutdown(wait=False)

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. On a fresh file that another process is setting up, SQLite
        answers "locked" at once instead of waiting out the busy timeout: retry."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN / COMMIT ourselves
            check_same_thread=False,  # only the worker thread ever touches it
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            if self.path != ":memory:":
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see `_checkpoints`
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations.check_order(migrations.SQLITE)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(migrations.SCHEMA_VERSION_SQLITE)
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            todo = migrations.pending(migrations.SQLITE, int(current.fetchone()[0]))
            for m in todo:
                for statement in m.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, to_us(self._clock.now())),
                )
                log.info("store_migrated", backend="sqlite", version=m.version, name=m.name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except sqlite3.Error as e:
            raise StoreError(f"sqlite: {e}") from e

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is not open")
        return self._conn

    def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` in one write transaction: all of it commits or none of it."""
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def ping(self) -> bool:
        try:
            return bool(await self._run(lambda: self._db().execute("SELECT 1").fetchone()[0]))
        except StoreError:
            return False

    async def schema_version(self) -> int:
        """The highest migration applied to this database."""

        def q() -> int:
            row = self._db().execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            return int(row.fetchone()[0])

        return await self._run(q)

    # ------------------------------------------------------------------ feeds

    _FEED_COLUMNS = (
        "name, url, etag, last_modified, initialized, last_success, last_attempt, last_error, "
        "consecutive_failures, next_poll_at, interval_s, items_total"
    )

    @staticmethod
    def _feed_from_row(row: Sequence[Any]) -> FeedState:
        return FeedState(
            name=row[0],
            url=row[1],
            etag=row[2],
            last_modified=row[3],
            initialized=bool(row[4]),
            last_success=from_us(row[5]),
            last_attempt=from_us(row[6]),
            last_error=row[7],
            consecutive_failures=int(row[8]),
            next_poll_at=from_us(row[9]),
            interval_s=row[10],
            items_total=int(row[11]),
        )

    async def load_feed_state(self, name: str) -> FeedState | None:
        def q() -> FeedState | None:
            row = (
                self._db()
                .execute(f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE name = ?", (name,))
                .fetchone()
            )
            return None if row is None else self._feed_from_row(row)

        return await self._run(q)

    async def load_feed_states(self) -> list[FeedState]:
        def q() -> list[FeedState]:
            rows = self._db().execute(f"SELECT {self._FEED_COLUMNS} FROM feeds ORDER BY name")
            return [self._feed_from_row(r) for r in rows.fetchall()]

        return await self._run(q)

    @staticmethod
    def _save_feed(conn: sqlite3.Connection, s: FeedState) -> None:
        conn.execute(
            f"""INSERT INTO feeds ({SqliteStore._FEED_COLUMNS})
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
            (
                s.name,
                s.url,
                s.etag,
                s.last_modified,
                int(s.initialized),
                to_us(s.last_success),
                to_us(s.last_attempt),
                None if s.last_error is None else redact(s.last_error),
                s.consecutive_failures,
                to_us(s.next_poll_at),
                s.interval_s,
                s.items_total,
            ),
        )

    async def save_feed_state(self, state: FeedState) -> None:
        await self._run(self._write, lambda conn: self._save_feed(conn, state))

    async def claim_feeds(
        self,
        owner: str,
        names: Sequence[str],
        now: datetime,
        lease_s: float,
        limit: int | None = None,
    ) -> list[str]:
        now_us = to_us(now)
        until_us = to_us(now + timedelta(seconds=lease_s))
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if n not in self._lease_rows]

        def body(conn: sqlite3.Connection) -> list[str]:
            conn.executemany(
                "INSERT OR IGNORE INTO feed_leases (name) VALUES (?)", [(n,) for n in missing]
            )
            free: list[tuple[int, str]] = []  # (next_poll_at or -1 for never polled, name)
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"""SELECT l.name, f.next_poll_at FROM feed_leases l
                        LEFT JOIN feeds f ON f.name = l.name
                        WHERE l.name IN ({marks})
                          AND (l.lease_until IS NULL OR l.lease_until <= ?)
                          AND (f.next_poll_at IS NULL OR f.next_poll_at <= ?)""",
                    (*chunk, now_us, now_us),
                ).fetchall()
                free.extend((-1 if r[1] is None else r[1], r[0]) for r in rows)
            # The longest overdue first, so a limit never starves a feed.
            claimed = [name for _, name in sorted(free)[:limit]]
            conn.executemany(
                "UPDATE feed_leases SET owner = ?, lease_until = ? WHERE name = ?",
                [(owner, until_us, n) for n in claimed],
            )
            return sorted(claimed)

        claimed = await self._run(self._write, body)
        self._lease_rows.update(missing)
        return claimed

    async def release_feed(self, owner: str, name: str) -> None:
        await self._run(
            self._write,
            lambda conn: conn.execute(
                "UPDATE feed_leases SET owner = NULL, lease_until = NULL "
                "WHERE name = ? AND owner = ?",
                (name, owner),
            ),
        )

    # ------------------------------------------------------------------ items and stories

    async def known_items(self, feed: str, item_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(item_ids))

        def q() -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                rows = self._db().execute(
                    f"SELECT item_id, content_hash FROM seen_items "
                    f"WHERE feed = ? AND item_id IN ({marks})",
                    (feed, *chunk),
                )
                found.update({r[0]: r[1] for r in rows.fetchall()})
            return found

        return await self._run(q)

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
        now = self._clock.now()
        created_us, until_us = to_us(now), to_us(now + timedelta(seconds=lease_s))
        assert created_us is not None and until_us is not None  # from datetimes
        made = await self._commit_poll(state, items, stories, alerts, (owner, until_us), now)
        return claimed_rows(made, from_us_required(created_us))  # as a claim reads it

    async def _commit_poll(
        self,
        state: FeedState,
        items: Sequence[SeenItem],
        stories: Sequence[StoryRecord],
        alerts: Sequence[NewOutboxEntry],
        lease: tuple[str, int] | None,
        now: datetime | None = None,
    ) -> list[tuple[NewOutboxEntry, int]]:
        created_at = to_us(now or self._clock.now())

        def body(conn: sqlite3.Connection) -> list[tuple[NewOutboxEntry, int]]:
            self._save_feed(conn, state)
            conn.executemany(
                """INSERT INTO seen_items
                       (feed, item_id, content_hash, first_seen, published, story_key)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (feed, item_id) DO UPDATE SET
                       content_hash = excluded.content_hash,
                       published = COALESCE(excluded.published, seen_items.published),
                       story_key = COALESCE(excluded.story_key, seen_items.story_key)""",
                [
                    (
                        i.feed,
                        i.item_id,
                        i.content_hash,
                        to_us(i.first_seen),
                        to_us(i.published),
                        i.story_key,
                    )
                    for i in items
                ],
            )
            for s in stories:
                self._upsert_story(conn, s)
            return self._insert_outbox(conn, alerts, created_at, lease)

        return await self._run(self._write, body)

    async def enqueue(self, alerts: Sequence[NewOutboxEntry]) -> list[int]:
        created_at = to_us(self._clock.now())
        made = await self._run(
            self._write, lambda conn: self._insert_outbox(conn, alerts, created_at, None)
        )
        return [i for _, i in made]

    @staticmethod
    def _insert_outbox(
        conn: sqlite3.Connection,
        entries: Sequence[NewOutboxEntry],
        created_at: int | None,
        lease: tuple[str, int] | None,
    ) -> list[tuple[NewOutboxEntry, int]]:
        """The rows created (a destination + dedupe_key already queued is skipped);
        with `lease` (owner, until), created as that owner's claim."""
        made: list[tuple[NewOutboxEntry, int]] = []
        owner, until = lease if lease is not None else (None, None)
        status, attempts = ("pending", 0) if lease is None else ("sending", 1)
        for a in entries:
            cur = conn.execute(
                """INSERT INTO outbox (destination, dedupe_key, alert, status, created_at,
                                     lease_owner, lease_until, attempts)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (destination, dedupe_key) DO NOTHING""",
                (
                    a.destination,
                    a.dedupe_key,
                    alert_to_json(a.alert),
                    status,
                    created_at,
                    owner,
                    until,
                    attempts,
                ),
            )
            if cur.rowcount == 1 and cur.lastrowid is not None:
                made.append((a, cur.lastrowid))
        return made

    @staticmethod
    def _upsert_story(conn: sqlite3.Connection, s: StoryRecord) -> None:
        conn.execute(
            """INSERT INTO stories (key, title_norm, first_seen, sources, figures)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET
                   title_norm = excluded.title_norm,
                   first_seen = MIN(stories.first_seen, excluded.first_seen),
                   sources = excluded.sources,
                   figures = excluded.figures""",
            (
                s.key,
                s.title_norm,
                to_us(s.first_seen),
                dump_json(list(s.sources)),
                dump_json(list(s.figures)),
            ),
        )

    async def recent_stories(self, since: datetime) -> list[StoryRecord]:
        since_us = to_us(since)

        def q() -> list[StoryRecord]:
            rows = self._db().execute(
                "SELECT key, title_norm, first_seen, sources, figures FROM stories "
                "WHERE first_seen >= ? ORDER BY first_seen, key",
                (since_us,),
            )
            return [
                StoryRecord(
                    key=r[0],
                    title_norm=r[1],
                    first_seen=from_us_required(r[2]),
                    sources=tuple(load_json(r[3], [])),
                    figures=tuple(load_json(r[4], [])),
                )
                for r in rows.fetchall()
            ]

        return await self._run(q)

    async def prune(self, before: datetime) -> int:
        before_us = to_us(before)
        marks = ",".join("?" * len(_FINISHED))

        def body(conn: sqlite3.Connection) -> int:
            n = conn.execute("DELETE FROM seen_items WHERE first_seen < ?", (before_us,)).rowcount
            n += conn.execute("DELETE FROM stories WHERE first_seen < ?", (before_us,)).rowcount
            n += conn.execute(
                f"DELETE FROM outbox WHERE status IN ({marks}) AND created_at < ?",
                (*_FINISHED, before_us),
            ).rowcount
            return int(n)

        started = time.monotonic()
        removed = await self._run(self._write, body)
        log.info(
            "store_pruned",
            backend="sqlite",
            removed=removed,
            ms=round((time.monotonic() - started) * 1000),
        )
        return removed

    # ------------------------------------------------------------------ outbox

    _OUTBOX_COLUMNS = (
        "id, destination, alert, dedupe_key, status, attempts, created_at, next_attempt_at, "
        "last_error, sent_at, message_ref"
    )

    @staticmethod
    def _entry_from_row(row: Sequence[Any]) -> OutboxEntry:
        created = from_us_required(row[6])
        return OutboxEntry(
            id=int(row[0]),
            destination=row[1],
            alert=alert_from_json(row[2], int(row[0])),
            dedupe_key=row[3],
            status=row[4],
            attempts=int(row[5]),
            created_at=created,
            next_attempt_at=from_us(row[7]) or created,
            last_error=row[8],
            sent_at=from_us(row[9]),
            message_ref=row[10],
        )

    async def claim_outbox(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[OutboxEntry]:
        now_us = to_us(now)
        until_us = to_us(now + timedelta(seconds=lease_s))

        def body(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(
                """SELECT id FROM outbox
                   WHERE status IN ('pending', 'sending')
                     AND ((status = 'pending'
                           AND (next_attempt_at IS NULL OR next_attempt_at <= ?))
                          OR (status = 'sending' AND lease_until <= ?))
                   ORDER BY id LIMIT ?""",
                (now_us, now_us, max(0, limit)),
            ).fetchall()
            ids = [r[0] for r in rows]
            conn.executemany(
                "UPDATE outbox SET status = 'sending', lease_owner = ?, lease_until = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                [(owner, until_us, i) for i in ids],
            )
            return [self._get_entry(conn, i) for i in ids]

        return await self._run(self._write, body)

    async def release_outbox(self, owner: str, now: datetime) -> int:
        now_us = to_us(now)

        def body(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL, "
                "next_attempt_at = ? WHERE status = 'sending' AND lease_owner = ?",
                (now_us, owner),
            )
            return int(cur.rowcount)

        return await self._run(self._write, body)

    def _get_entry(self, conn: sqlite3.Connection, entry_id: int) -> OutboxEntry:
        row = conn.execute(
            f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (entry_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no outbox row {entry_id}")
        return self._entry_from_row(row)

    def _update_entry(self, entry_id: int, sql: str, params: tuple[Any, ...]) -> None:
        def body(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, (*params, entry_id)).rowcount != 1:
                raise StoreError(f"no outbox row {entry_id}")

        self._write(body)

    async def mark_sent(self, entry_id: int, now: datetime, message_ref: str | None) -> None:
        await self._run(
            self._update_entry,
            entry_id,
            "UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            (to_us(now), message_ref),
        )

    async def mark_retry(self, entry_id: int, next_attempt_at: datetime, error: str) -> None:
        await self._run(
            self._update_entry,
            entry_id,
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            (to_us(next_attempt_at), redact(error)),
        )

    async def mark_rejected(self, entry_id: int, now: datetime, error: str) -> None:
        await self._run(
            self._update_entry,
            entry_id,
            "UPDATE outbox SET status = 'rejected', next_attempt_at = ?, last_error = ?, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            (to_us(now), redact(error)),
        )

    async def mark_failed(self, entry_id: int, now: datetime, error: str) -> None:
        await self._run(
            self._update_entry,
            entry_id,
            "UPDATE outbox SET status = 'failed', next_attempt_at = ?, last_error = ?, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            (to_us(now), redact(error)),
        )

    async def requeue(self, entry_ids: Sequence[int], now: datetime) -> int:
        now_us = to_us(now)

        def body(conn: sqlite3.Connection) -> int:
            moved = 0
            for i in dict.fromkeys(entry_ids):
                moved += conn.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                    "lease_owner = NULL, lease_until = NULL "
                    "WHERE id = ? AND status IN ('failed', 'rejected')",
                    (now_us, i),
                ).rowcount
            return moved

        return await self._run(self._write, body)

    async def list_outbox(
        self, statuses: Sequence[OutboxStatus] = _OPEN_STATUSES
    ) -> list[OutboxEntry]:
        wanted = list(dict.fromkeys(statuses))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))

        def q() -> list[OutboxEntry]:
            rows = self._db().execute(
                f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE status IN ({marks}) ORDER BY id",
                wanted,
            )
            return [self._entry_from_row(r) for r in rows.fetchall()]

        return await self._run(q)

    async def sent_alert(self, destination: str, dedupe_key: str) -> Alert | None:
        def q() -> Alert | None:
            row = (
                self._db()
                .execute(
                    "SELECT id, alert FROM outbox WHERE destination = ? AND dedupe_key = ? "
                    "AND status = 'sent'",
                    (destination, dedupe_key),
                )
                .fetchone()
            )
            return alert_from_json(row[1], int(row[0])) if row else None

        return await self._run(q)

    async def outbox_depth(self) -> int:
        def q() -> int:
            row = self._db().execute(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
            )
            return int(row.fetchone()[0])

        return await self._run(q)

    # ------------------------------------------------------------------ destinations

    async def load_destinations(self) -> list[DestinationState]:
        def q() -> list[DestinationState]:
            rows = self._db().execute(
                "SELECT name, broken, reason, last_success, last_error, extra "
                "FROM destinations ORDER BY name"
            )
            return [
                DestinationState(
                    name=r[0],
                    broken=bool(r[1]),
                    reason=r[2],
                    last_success=from_us(r[3]),
                    last_error=r[4],
                    extra=dict(load_json(r[5], {})),
                )
                for r in rows.fetchall()
            ]

        return await self._run(q)

    async def save_destination(self, state: DestinationState) -> None:
        params = (
            state.name,
            int(state.broken),
            None if state.reason is None else redact(state.reason),
            to_us(state.last_success),
            None if state.last_error is None else redact(state.last_error),
            dump_json(state.extra),
        )
        await self._run(
            self._write,
            lambda conn: conn.execute(
                """INSERT INTO destinations (name, broken, reason, last_success, last_error, extra)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET
                       broken = excluded.broken, reason = excluded.reason,
                       last_success = excluded.last_success,
                       last_error = excluded.last_error, extra = excluded.extra""",
                params,
            ),
        )
