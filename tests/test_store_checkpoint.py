"""SQLite's write-ahead log is copied back into the database off the write path.

A commit that crosses SQLite's automatic checkpoint threshold (1,000 pages) pays
for the copy and its fsync itself, while an alert may be waiting on that commit.
The store turns the automatic checkpoint off and runs a passive one from a
connection and thread of its own every `checkpoint_s` seconds instead.

Where the rows are is read from a copy of the main database file alone: what
only the log holds is missing from it.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from monitor.ports import SeenItem
from monitor.store.sqlite import SqliteStore
from tests.conftest import FakeClock
from tests.fakes.stores import T0, feed

# About 1,500 pages of 4 KiB: half as much again as SQLite's automatic threshold.
BATCHES, PER_BATCH = 30, 400


def _items(batch: int) -> list[SeenItem]:
    pad = "x" * 400  # long ids fill pages quickly
    return [SeenItem("f", f"{batch}-{i}-{pad}", f"hash-{batch}-{i}", T0) for i in range(PER_BATCH)]


async def _fill(store: SqliteStore) -> None:
    for b in range(BATCHES):
        await store.commit_poll(feed("f"), _items(b), [], [])


def _rows_in_main_file(db: Path, tmp: Path) -> int:
    """Seen items in the database file itself, ignoring its write-ahead log."""
    copy = tmp / "main-only.db"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'seen_items'")
        if tables.fetchone() is None:  # even the schema is still in the log only
            return 0
        return int(conn.execute("SELECT count(*) FROM seen_items").fetchone()[0])
    finally:
        conn.close()


async def test_no_commit_copies_the_log_back_itself(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    store = SqliteStore(db, clock=FakeClock(T0), instance_id="t", checkpoint_s=3600)
    async with store:
        await _fill(store)
        assert Path(f"{db}-wal").stat().st_size > 1000 * 4096
        # Every row is committed, yet none has reached the main file: no commit ran a
        # checkpoint on the way, although the log is past SQLite's own threshold.
        assert _rows_in_main_file(db, tmp_path) == 0
        assert len(await store.known_items("f", [it.item_id for it in _items(0)])) == PER_BATCH


async def test_the_checkpointer_copies_the_log_back_while_the_store_is_open(
    tmp_path: Path,
) -> None:
    db = tmp_path / "monitor.db"
    store = SqliteStore(db, clock=FakeClock(T0), instance_id="t", checkpoint_s=0.05)
    async with store:
        await _fill(store)
        for _ in range(100):  # a few checkpoint rounds at most
            if _rows_in_main_file(db, tmp_path) == BATCHES * PER_BATCH:
                break
            await asyncio.sleep(0.05)
        assert _rows_in_main_file(db, tmp_path) == BATCHES * PER_BATCH
        # and the store carries on writing and reading meanwhile
        await store.commit_poll(feed("f"), _items(BATCHES), [], [])
        assert len(await store.known_items("f", [it.item_id for it in _items(BATCHES)])) == (
            PER_BATCH
        )


async def test_closing_the_store_stops_the_checkpointer_and_leaves_a_whole_database(
    tmp_path: Path,
) -> None:
    db = tmp_path / "monitor.db"
    store = SqliteStore(db, clock=FakeClock(T0), instance_id="t", checkpoint_s=0.01)
    async with store:
        await _fill(store)
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "sqlite-checkpoint"]
    assert tasks == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM seen_items").fetchone() == (BATCHES * PER_BATCH,)
    finally:
        conn.close()
