"""Stores for tests: a fresh opened store per backend, plus record builders.

`store_url` yields a URL for an empty database: a SQLite file under `tmp_path`,
or a PostgreSQL schema of its own (dropped afterwards) on the server at
127.0.0.1:5432. PostgreSQL params carry `pytest.mark.postgres` and are skipped
when the server does not answer. `store` yields that store, opened, on the
test's `clock`. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from monitor.core.models import Alert
from monitor.ports import FeedState, NewOutboxEntry, SeenItem, StoryRecord
from monitor.store import open_store
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore

PG_URL = os.environ.get("MONITOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
T0 = datetime(2025, 1, 27, 14, 30, tzinfo=UTC)

AnyStore = SqliteStore | PostgresStore

_pg_up: bool | None = None


async def postgres_available() -> bool:
    """Whether the test server answers (asked once per test session)."""
    global _pg_up
    if _pg_up is None:
        try:
            conn = await asyncpg.connect(PG_URL, timeout=3)
            await conn.close()
            _pg_up = True
        except (TimeoutError, OSError, asyncpg.PostgresError):
            _pg_up = False
    return _pg_up


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
        return
    if not await postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        await drop_schema(schema)


@pytest.fixture
async def store(store_url: str, clock: Any) -> AsyncIterator[AnyStore]:
    s = open_store(store_url, clock=clock, instance_id="test-instance")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


# --------------------------------------------------------------------------- builders


def alert(key: str, title: str = "엔비디아 16.97% 급락", at: datetime = T0) -> Alert:
    return Alert(kind="news", key=key, title=title, created_at=at, lang="ko", entities=("nvidia",))


def entry(destination: str, key: str) -> NewOutboxEntry:
    return NewOutboxEntry(destination=destination, alert=alert(key), dedupe_key=key)


def feed(name: str, **changes: Any) -> FeedState:
    state = FeedState(name=name, url=f"https://news.example/{name}.xml")
    for k, v in changes.items():
        setattr(state, k, v)
    return state


def seen(feed_name: str, item_id: str, content_hash: str = "h1", at: datetime = T0) -> SeenItem:
    return SeenItem(feed=feed_name, item_id=item_id, content_hash=content_hash, first_seen=at)


def story(key: str, at: datetime = T0, sources: int = 1) -> StoryRecord:
    return StoryRecord(
        key=key,
        title_norm=f"title {key}",
        first_seen=at,
        sources=tuple({"feed": f"f{i}", "link": f"https://x/{i}"} for i in range(sources)),
        figures=("16.97",),
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
