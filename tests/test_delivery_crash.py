"""kill -9 during a burst of 100 alerts, then restart: none lost, duplicates only in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from monitor.ports import FeedState, NewOutboxEntry
from monitor.store import open_store
from tests.fakes.alerts import news_alert
from tests.fakes.discord_server import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
BURST = 100


async def start_worker(db: Path, url: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as err:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.dispatch_worker",
            str(db),
            url,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )


async def wait_for(predicate, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)


def deliveries(fake: FakeDiscord) -> Counter[str]:
    """Posts per alert that reached Discord with a valid body (answered or cut off by the kill)."""
    return Counter(r.body["embeds"][0]["title"] for r in fake.posts() if r.status in (0, 200))


async def test_kill_9_mid_burst_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    log = tmp_path / "worker.log"
    store = open_store(f"sqlite:///{db}")
    await store.open()
    alerts = [news_alert(i) for i in range(BURST)]
    await store.commit_poll(
        FeedState(name="yonhap-economy"), [], [], [NewOutboxEntry("desk", a, a.key) for a in alerts]
    )

    kills = 0
    async with FakeDiscord(rate=None, delay_s=0.01) as fake:
        for stop_at in (25, 60):
            worker = await start_worker(db, fake.url, log)
            await wait_for(lambda n=stop_at: len(fake.posts()) >= n, timeout=20)
            os.kill(worker.pid, signal.SIGKILL)
            await worker.wait()
            kills += 1
        worker = await start_worker(db, fake.url, log)
        try:
            await wait_for(lambda: len(deliveries(fake)) >= BURST, timeout=20)
            for _ in range(200):  # and the outbox agrees
                if await store.outbox_depth() == 0:
                    break
                await asyncio.sleep(0.02)
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
    depth = await store.outbox_depth()
    sent = await store.list_outbox(("sent",))
    await store.close()

    counts = deliveries(fake)
    assert set(counts) == {f"[속보] {a.title}" for a in alerts}, "an alert was lost"
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\nkill -9 x{kills} over {BURST} alerts: {len(counts)} delivered, {duplicates} duplicates"
    )
    assert duplicates <= kills, f"{duplicates} duplicates for {kills} kills"
    assert depth == 0 and len(sent) == BURST
    assert fake.token not in log.read_text(encoding="utf-8")
