"""Versioned schema migrations for both backends.

Each backend has an ordered list of `Migration`s; `open()` applies the ones
whose version is above the highest row of `schema_version`, in one transaction
per migration. Shipped migrations are never edited: a change is a new version.
SQLite keeps timestamps as integer microseconds since the epoch; PostgreSQL
uses `timestamptz`.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.errors import StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


SCHEMA_VERSION_SQLITE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""

SCHEMA_VERSION_POSTGRES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)
"""

SQLITE: tuple[Migration, ...] = (
    Migration(
        1,
        "feeds, seen items, stories, outbox, destinations",
        (
            """CREATE TABLE feeds (
                name TEXT NOT NULL PRIMARY KEY,
                url TEXT NOT NULL DEFAULT '',
                etag TEXT,
                last_modified TEXT,
                initialized INTEGER NOT NULL DEFAULT 0,
                last_success INTEGER,
                last_attempt INTEGER,
                last_error TEXT,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                next_poll_at INTEGER,
                interval_s REAL,
                items_total INTEGER NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE feed_leases (
                name TEXT NOT NULL PRIMARY KEY,
                owner TEXT,
                lease_until INTEGER
            )""",
            """CREATE TABLE seen_items (
                feed TEXT NOT NULL,
                item_id TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                first_seen INTEGER NOT NULL,
                published INTEGER,
                story_key TEXT,
                PRIMARY KEY (feed, item_id)
            )""",
            "CREATE INDEX seen_items_first_seen ON seen_items (first_seen)",
            """CREATE TABLE stories (
                key TEXT NOT NULL PRIMARY KEY,
                title_norm TEXT NOT NULL,
                first_seen INTEGER NOT NULL,
                sources TEXT NOT NULL DEFAULT '[]',
                figures TEXT NOT NULL DEFAULT '[]'
            )""",
            "CREATE INDEX stories_first_seen ON stories (first_seen)",
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                destination TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                alert TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'rejected')),
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                next_attempt_at INTEGER,
                last_error TEXT,
                sent_at INTEGER,
                message_ref TEXT,
                lease_owner TEXT,
                lease_until INTEGER,
                UNIQUE (destination, dedupe_key)
            )""",
            "CREATE INDEX outbox_status ON outbox (status, next_attempt_at)",
            """CREATE TABLE destinations (
                name TEXT NOT NULL PRIMARY KEY,
                broken INTEGER NOT NULL DEFAULT 0,
                reason TEXT,
                last_success INTEGER,
                last_error TEXT,
                extra TEXT NOT NULL DEFAULT '{}'
            )""",
        ),
    ),
    Migration(
        2,
        "index only the claimable outbox rows, in claim order",
        (
            # Finished rows pile up until pruned; a claim must not wade through them.
            "DROP INDEX outbox_status",
            "CREATE INDEX outbox_claimable ON outbox (id) WHERE status IN ('pending', 'sending')",
        ),
    ),
)

POSTGRES: tuple[Migration, ...] = (
    Migration(
        1,
        "feeds, seen items, stories, outbox, destinations",
        (
            """CREATE TABLE feeds (
                name TEXT NOT NULL PRIMARY KEY,
                url TEXT NOT NULL DEFAULT '',
                etag TEXT,
                last_modified TEXT,
                initialized BOOLEAN NOT NULL DEFAULT FALSE,
                last_success TIMESTAMPTZ,
                last_attempt TIMESTAMPTZ,
                last_error TEXT,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                next_poll_at TIMESTAMPTZ,
                interval_s DOUBLE PRECISION,
                items_total BIGINT NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE feed_leases (
                name TEXT NOT NULL PRIMARY KEY,
                owner TEXT,
                lease_until TIMESTAMPTZ
            )""",
            """CREATE TABLE seen_items (
                feed TEXT NOT NULL,
                item_id TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                first_seen TIMESTAMPTZ NOT NULL,
                published TIMESTAMPTZ,
                story_key TEXT,
                PRIMARY KEY (feed, item_id)
            )""",
            "CREATE INDEX seen_items_first_seen ON seen_items (first_seen)",
            """CREATE TABLE stories (
                key TEXT NOT NULL PRIMARY KEY,
                title_norm TEXT NOT NULL,
                first_seen TIMESTAMPTZ NOT NULL,
                sources JSONB NOT NULL DEFAULT '[]',
                figures JSONB NOT NULL DEFAULT '[]'
            )""",
            "CREATE INDEX stories_first_seen ON stories (first_seen)",
            """CREATE TABLE outbox (
                id BIGSERIAL PRIMARY KEY,
                destination TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                alert JSONB NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'rejected')),
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at TIMESTAMPTZ NOT NULL,
                next_attempt_at TIMESTAMPTZ,
                last_error TEXT,
                sent_at TIMESTAMPTZ,
                message_ref TEXT,
                lease_owner TEXT,
                lease_until TIMESTAMPTZ,
                UNIQUE (destination, dedupe_key)
            )""",
            "CREATE INDEX outbox_status ON outbox (status, next_attempt_at)",
            """CREATE TABLE destinations (
                name TEXT NOT NULL PRIMARY KEY,
                broken BOOLEAN NOT NULL DEFAULT FALSE,
                reason TEXT,
                last_success TIMESTAMPTZ,
                last_error TEXT,
                extra JSONB NOT NULL DEFAULT '{}'
            )""",
        ),
    ),
    Migration(
        2,
        "index only the claimable outbox rows, in claim order",
        (
            # Finished rows pile up until pruned; a claim must not wade through them.
            "DROP INDEX outbox_status",
            "CREATE INDEX outbox_claimable ON outbox (id) WHERE status IN ('pending', 'sending')",
        ),
    ),
)


def pending(migrations: tuple[Migration, ...], current: int) -> list[Migration]:
    """The migrations above `current`, in order; StoreError if the database is newer."""
    latest = latest_version(migrations)
    if current > latest:
        raise StoreError(
            f"the database schema is at version {current}, newer than this program's {latest}"
        )
    return [m for m in migrations if m.version > current]


def latest_version(migrations: tuple[Migration, ...]) -> int:
    return max((m.version for m in migrations), default=0)


def check_order(migrations: tuple[Migration, ...]) -> None:
    """Versions must run 1, 2, 3 ... without gaps; a programming error otherwise."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migration versions are not 1..n in order: {versions}")
