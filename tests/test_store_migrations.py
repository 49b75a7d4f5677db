"""Schema migrations and store URLs: applied once, in order, atomically, without races."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from monitor.core.errors import StoreError
from monitor.store import migrations, open_store, split_schema, sqlite_path
from monitor.store.migrations import Migration
from monitor.store.postgres import PostgresStore
from tests.fakes.store_worker import results, spawn, start_together
from tests.fakes.stores import T0, entry, feed, seen, store_url

__all__ = ["store_url"]

LATEST = migrations.latest_version(migrations.SQLITE)


async def versions(url: str) -> list[int]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        finally:
            conn.close()
    dsn, schema = split_schema(url)
    pg = await asyncpg.connect(dsn)
    try:
        rows = await pg.fetch(f'SELECT version FROM "{schema}".schema_version ORDER BY 1')
        return [r[0] for r in rows]
    finally:
        await pg.close()


async def test_reopening_applies_nothing_twice_and_keeps_data(store_url: str) -> None:
    async with open_store(store_url) as s:
        await s.commit_poll(feed("a"), [seen("a", "1")], [], [])
    async with open_store(store_url) as s:
        assert await s.schema_version() == LATEST
        assert await s.known_items("a", ["1"]) == {"1": "h1"}
    assert await versions(store_url) == list(range(1, LATEST + 1))


async def test_several_stores_opening_at_once_migrate_once(store_url: str) -> None:
    stores = [open_store(store_url, instance_id=f"i{i}") for i in range(5)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert [await s.schema_version() for s in stores] == [LATEST] * 5
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert await versions(store_url) == list(range(1, LATEST + 1))


async def test_three_processes_opening_a_fresh_database_do_not_race(store_url: str) -> None:
    procs = [spawn("open", store_url, f"p{i}") for i in range(3)]
    await start_together(procs)
    got = await results(procs)
    assert [r["version"] for r in got] == [LATEST] * 3
    assert await versions(store_url) == list(range(1, LATEST + 1))


async def test_an_older_database_is_upgraded_in_place(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "SQLITE" if store_url.startswith("sqlite") else "POSTGRES"
    monkeypatch.setattr(migrations, name, getattr(migrations, name)[:1])
    async with open_store(store_url) as s:
        assert await s.schema_version() == 1
        await s.commit_poll(feed("a"), [seen("a", "1")], [], [entry("desk", "k")])
    monkeypatch.undo()
    async with open_store(store_url) as s:
        assert await s.schema_version() == LATEST
        assert await s.known_items("a", ["1"]) == {"1": "h1"}
        [row] = await s.claim_outbox("w", T0, 10, 60)
        assert row.dedupe_key == "k"
    assert await versions(store_url) == list(range(1, LATEST + 1))


async def test_a_database_newer_than_the_program_is_refused(store_url: str) -> None:
    async with open_store(store_url) as s:
        pass
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(store_url))
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
        conn.commit()
        conn.close()
    else:
        dsn, schema = split_schema(store_url)
        pg = await asyncpg.connect(dsn)
        await pg.execute(f"INSERT INTO \"{schema}\".schema_version VALUES (99, 'future', now())")
        await pg.close()
    s = open_store(store_url)
    with pytest.raises(StoreError, match="version 99, newer"):
        await s.open()
    assert await s.ping() is False


async def test_a_failing_migration_is_rolled_back_whole(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_store(store_url):
        pass
    broken = Migration(
        LATEST + 1,
        "half good",
        ("CREATE TABLE extra (x INTEGER)", "CREATE TABLE feeds (name TEXT)"),  # already exists
    )
    name = "SQLITE" if store_url.startswith("sqlite") else "POSTGRES"
    monkeypatch.setattr(migrations, name, (*getattr(migrations, name), broken))
    with pytest.raises(StoreError):
        await open_store(store_url).open()
    assert await versions(store_url) == list(range(1, LATEST + 1))
    monkeypatch.undo()
    assert not await has_table(store_url, "extra")
    async with open_store(store_url) as s:  # still usable at the old version
        assert await s.schema_version() == LATEST


async def has_table(url: str, table: str) -> bool:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            return row is not None
        finally:
            conn.close()
    dsn, schema = split_schema(url)
    pg = await asyncpg.connect(dsn)
    try:
        return bool(await pg.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.{table}"))
    finally:
        await pg.close()


def test_migration_versions_run_one_to_n() -> None:
    migrations.check_order(migrations.SQLITE)
    migrations.check_order(migrations.POSTGRES)
    assert [m.version for m in migrations.SQLITE] == [m.version for m in migrations.POSTGRES]
    with pytest.raises(StoreError, match=r"not 1\.\.n"):
        migrations.check_order((Migration(1, "a", ()), Migration(3, "c", ())))


# --------------------------------------------------------------------------- URLs


async def test_a_relative_sqlite_url_creates_its_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///data/nested/monitor.db") as s:
        assert await s.ping()
    assert (tmp_path / "data" / "nested" / "monitor.db").is_file()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/monitor.db", "data/monitor.db"),
        ("sqlite:////var/lib/monitor/state.db", "/var/lib/monitor/state.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_name_their_file(url: str, path: str) -> None:
    assert sqlite_path(url) == path


async def test_an_in_memory_store_works() -> None:
    async with open_store("sqlite:///:memory:") as s:
        await s.commit_poll(feed("a"), [seen("a", "1")], [], [])
        assert await s.known_items("a", ["1"]) == {"1": "h1"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/monitor", "unknown store URL scheme"),
        ("sqlite:///", "names no file"),
        ("postgresql://u@127.0.0.1/db?schema=bad-name;drop", "invalid schema name"),
    ],
)
def test_bad_store_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value)


def test_postgres_urls_keep_their_other_parameters() -> None:
    assert split_schema("postgresql://u@h:5432/db?schema=s1&sslmode=disable") == (
        "postgresql://u@h:5432/db?sslmode=disable",
        "s1",
    )
    assert split_schema("postgres://u@h/db") == ("postgres://u@h/db", None)
    assert isinstance(open_store("postgres://u@127.0.0.1/db"), PostgresStore)


async def test_an_unreachable_database_is_a_store_error() -> None:
    s = open_store("postgresql://postgres:secret@127.0.0.1:1/test")
    with pytest.raises(StoreError) as caught:
        await s.open()
    assert "secret" not in str(caught.value)


async def test_a_sqlite_path_that_is_a_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError):
        await open_store(f"sqlite:///{tmp_path / 'dir.db'}").open()
