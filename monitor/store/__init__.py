"""Store adapter: SQLite (default) and PostgreSQL (several instances).

`open_store(url)` picks the backend from the URL's scheme and returns a store
that is not yet connected: `await store.open()` (or `async with store:`)
connects and applies pending migrations.

    sqlite:///data/monitor.db          relative to the working directory
    sqlite:////var/lib/monitor.db      absolute
    postgresql://user@host:5432/db     also postgres://; `?schema=name` keeps the
                                       tables in their own schema
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.core.clock import Clock
from monitor.core.errors import StoreError
from monitor.core.redact import redact

if TYPE_CHECKING:
    from monitor.ports import Store
    from monitor.store.postgres import PostgresStore
    from monitor.store.sqlite import SqliteStore

    def _implements_the_port(store: SqliteStore | PostgresStore) -> Store:
        return store  # mypy proves both backends match the Store protocol


class _UtcClock:
    """Wall-clock time, for callers that pass no clock of their own."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def default_instance_id() -> str:
    """`host:pid`: names this process's leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


def sqlite_path(url: str) -> str:
    """The file path in a `sqlite:///` URL (`sqlite:////abs` for an absolute path)."""
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a sqlite URL: {redact(url)}")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path:
        raise StoreError(f"sqlite URL names no file: {redact(url)}")
    return path


def split_schema(url: str) -> tuple[str, str | None]:
    """Take a `schema=` query parameter out of a PostgreSQL URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema or None


def open_store(
    url: str, *, instance_id: str | None = None, clock: Clock | None = None
) -> SqliteStore | PostgresStore:
    """A store for `url`, not yet opened. StoreError for an unknown scheme."""
    owner = instance_id or default_instance_id()
    clk: Clock = clock if clock is not None else _UtcClock()
    if url.startswith("sqlite:///"):
        from monitor.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), clock=clk, instance_id=owner)
    if url.startswith(("postgresql://", "postgres://")):
        from monitor.store.postgres import PostgresStore

        dsn, schema = split_schema(url)
        return PostgresStore(dsn, schema=schema, clock=clk, instance_id=owner)
    raise StoreError(f"unknown store URL scheme (want sqlite:/// or postgresql://): {redact(url)}")


__all__ = ["default_instance_id", "open_store"]
