"""`monitor run` as a real process: SIGTERM drains within the grace period and loses nothing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from monitor.core.models import Alert
from monitor.ports import NewOutboxEntry
from monitor.store import open_store
from tests.fakes.discord_server import FakeDiscord

GRACE_S = 3.0


def _config(tmp_path: Path, discord_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "state.db"}"

[prices]
enabled = false

[[notifiers]]
name = "desk"
kind = "discord"
url = "{discord_url}"

[health]
enabled = false

[dispatch]
grace = "{GRACE_S}s"
""",
        encoding="utf-8",
    )
    return path


async def _enqueue(db: Path, n: int) -> None:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    now = datetime.now(UTC)
    alerts = [
        Alert(kind="news", key=f"story:{i}", title=f"Story number {i}", created_at=now)
        for i in range(n)
    ]
    await store.enqueue([NewOutboxEntry("desk", a, a.key) for a in alerts])
    await store.close()


async def _statuses(db: Path) -> dict[str, str]:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    rows = await store.list_outbox(("pending", "sending", "sent", "failed", "rejected"))
    await store.close()
    return {r.alert.key: r.status for r in rows}


def _delivered_keys(discord: FakeDiscord) -> list[str]:
    keys: list[str] = []
    for body in discord.delivered():
        # A digest lists several stories; count each story once per message.
        found = dict.fromkeys(re.findall(r"Story number (\d+)(?!\d)", str(body)))
        keys += [f"story:{n}" for n in found]
    return keys


async def _run(config: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip


async def test_sigterm_with_20_pending_loses_nothing_and_exits_within_grace(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    # Each accepted post takes 0.4 s: 20 alerts cannot all go out within the grace period.
    async with FakeDiscord(delay_s=0.4, rate=None) as discord:
        config = _config(tmp_path, discord.url)
        await _enqueue(db, 20)

        proc = await _run(config)
        deadline = time.monotonic() + 15
        while not discord.posts() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert discord.posts(), "the daemon never started sending"
        proc.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()

        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=GRACE_S + 10)
        took = time.monotonic() - sent_at
        assert proc.returncode == 0, stderr.decode()
        assert took <= GRACE_S + 2.0, f"exited {took:.1f}s after SIGTERM"

        statuses = await _statuses(db)
        assert len(statuses) == 20
        assert set(statuses.values()) <= {"sent", "pending"}
        sent = {k for k, s in statuses.items() if s == "sent"}
        # What the store calls sent, Discord has; what it does not, will be sent next time.
        assert sent <= set(_delivered_keys(discord))
        # Accepted by Discord but not confirmed in the store: in flight at the stop.
        in_flight = set(_delivered_keys(discord)) - sent

        # The next start delivers the rest; nothing is lost.
        proc = await _run(config)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if set((await _statuses(db)).values()) == {"sent"}:
                break
            await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), timeout=GRACE_S + 10)
        assert set(_delivered_keys(discord)) == {f"story:{i}" for i in range(20)}
        assert set((await _statuses(db)).values()) == {"sent"}
        # Duplicates are limited to what was in flight when SIGTERM came.
        keys = _delivered_keys(discord)
        duplicated = {k for k in keys if keys.count(k) > 1}
        assert duplicated <= in_flight
        assert all(keys.count(k) <= 2 for k in keys)


async def test_sighup_with_a_broken_rule_file_keeps_running_on_the_rules_it_had(
    tmp_path: Path,
) -> None:
    import shutil
    import socket

    import aiohttp

    from monitor.rulefiles import default_rules_dir

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        "[prices]\nenabled = false\n"
        '[[notifiers]]\nname = "console"\nkind = "console"\n'
        f'[rules]\ndir = "rules"\nwatch = false\n'
        f"[health]\nport = {port}\n",
        encoding="utf-8",
    )

    async def ready() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as r,
        ):
            return r.status, await r.text()

    async def wait_ready(want: int) -> str:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                status, body = await ready()
                if status == want:
                    return body
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"/readyz never answered {want}")

    proc = await _run(config)
    try:
        await wait_ready(200)
        (rules / "rules.toml").write_text("[[rule]\nid = \n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        body = await wait_ready(503)  # restarted, on the old rules, saying what is wrong
        assert "rules.toml:1" in body
        assert proc.returncode is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=GRACE_S + 10)
    assert proc.returncode == 0, stderr.decode()[-2000:]
