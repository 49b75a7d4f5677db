"""Price follow-ups after a news alert: each delay fires once per alert, and what
the daemon keeps for them is let go when they are sent (or when the bound on
waiting alerts is passed), so a daemon that runs for months holds only the last
hour's worth."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitor.app import daemon as daemon_module
from tests.fakes.desk import Desk

DEEPSEEK = (
    "Nvidia shares plunge 17% as DeepSeek's cheap model rattles the AI trade",
    "Nvidia (NVDA) shares fell nearly 17% after Chinese startup DeepSeek said it trained "
    "a competitive model on H800 chips for about $5.6 million.",
)
EXPORTS = (
    "U.S. weighs new export curbs on Nvidia H20 chips to China",
    "Washington is considering rules that would bar Nvidia from selling its H20 "
    "accelerators to Chinese customers, people familiar with the matter said.",
)


def _with(messages: list[dict[str, Any]], *needles: str) -> list[dict[str, Any]]:
    return [m for m in messages if all(n in json.dumps(m, ensure_ascii=False) for n in needles)]


async def test_every_delay_sends_one_followup_and_then_nothing_is_kept(tmp_path: Path) -> None:
    async with Desk(tmp_path, followups=(1.0, 3.0)) as desk:
        assert desk.daemon is not None
        desk.publish(*DEEPSEEK)
        await desk.wait_for(lambda: _with(desk.slack.delivered(), "plunge 17%"), timeout=5)
        await desk.wait_for(lambda: desk.daemon and desk.daemon.followups_pending == 1, 3)

        await desk.wait_for(lambda: _with(desk.slack.delivered(), "+3s: NVDA"), timeout=8)
        assert len(_with(desk.slack.delivered(), "+1s: NVDA", "plunge 17%")) == 1
        assert len(_with(desk.slack.delivered(), "+3s: NVDA", "plunge 17%")) == 1
        # Both destinations got the alert; each follow-up reached both, and after
        # the last one the daemon holds nothing more for it.
        await desk.wait_for(
            lambda: len([r for r in desk.discord.received if r.method == "PATCH"]) >= 2, 5
        )
        assert desk.daemon.followups_pending == 0


async def test_beyond_the_bound_the_oldest_alert_loses_its_followups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "FOLLOWUPS_KEPT", 1)
    async with Desk(tmp_path, followups=(4.0,)) as desk:
        assert desk.daemon is not None
        desk.publish(*DEEPSEEK)
        await desk.wait_for(lambda: _with(desk.slack.delivered(), "plunge 17%"), timeout=5)
        desk.publish(*EXPORTS)
        await desk.wait_for(lambda: _with(desk.slack.delivered(), "H20"), timeout=5)
        assert desk.daemon.followups_pending == 1

        await desk.wait_for(lambda: _with(desk.slack.delivered(), "+4s: NVDA", "H20"), 10)
        assert _with(desk.slack.delivered(), "+4s: NVDA", "plunge 17%") == []
        assert desk.daemon.followups_pending == 0


async def test_a_followup_whose_alert_left_the_store_is_skipped(tmp_path: Path) -> None:
    """The alert a follow-up shows is read back from its sent outbox row when due;
    if that row is gone (pruned, or an older copy of the file restored), the
    follow-up is skipped and the daemon carries on."""
    async with Desk(tmp_path, followups=(2.0,)) as desk:
        assert desk.daemon is not None
        desk.publish(*DEEPSEEK)
        await desk.wait_for(lambda: _with(desk.slack.delivered(), "plunge 17%"), timeout=5)
        await desk.wait_for(lambda: desk.daemon and desk.daemon.followups_pending == 1, 3)
        with sqlite3.connect(tmp_path / "state.db") as db:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("DELETE FROM outbox")
        await desk.wait_for(lambda: desk.daemon and desk.daemon.followups_pending == 0, 6)

        desk.publish(*EXPORTS)  # still running: the next story and its follow-up go out
        await desk.wait_for(lambda: _with(desk.slack.delivered(), "+2s: NVDA", "H20"), 10)
        assert _with(desk.slack.delivered(), "+2s: NVDA", "plunge 17%") == []
