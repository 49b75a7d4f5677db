"""Price follow-ups after a news alert: each delay fires once per alert, and what
the daemon keeps for them is let go when they are sent (or when the bound on
waiting alerts is passed), so a daemon that runs for months holds only the last
hour's worth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.app import daemon as daemon_module
from monitor.app.daemon import followup_seed
from monitor.core.models import Alert, SourceRef, Stance, StanceLabel
from monitor.core.moves import followup_alert, price_context
from monitor.core.pricebook import PriceBook, PriceTick, SessionInfo
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


def test_the_kept_seed_gives_the_same_followup_as_the_whole_alert() -> None:
    start = datetime(2025, 1, 27, 15, 0, tzinfo=UTC)
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=142.62))
    book.add_many([PriceTick("NVDA", 120.0, start, "yahoo")])
    ctx = price_context(book, "NVDA", start, start, start + timedelta(seconds=30))
    assert ctx is not None
    alert = Alert(
        kind="news",
        key="story:deepseek",
        title=DEEPSEEK[0],
        created_at=start + timedelta(seconds=30),
        link="https://example.com/deepseek",
        lang="en",
        source="Example Wire",
        published=start,
        summary=DEEPSEEK[1],
        severity="warning",
        rules=("nvidia-bearish",),
        rule_titles=("Nvidia: bearish news",),
        entities=("nvidia", "deepseek"),
        stance=(Stance("nvidia", StanceLabel.BEARISH, -0.7),),
        prices=(ctx,),
        sources=(SourceRef("wire", "Example Wire", DEEPSEEK[0], "https://example.com/d"),),
        chart_png="iVBORw0KGgo" * 300,
    )
    book.add_many([PriceTick("NVDA", 117.0, start + timedelta(minutes=15), "yahoo")])
    later = start + timedelta(minutes=15, seconds=30)

    seed = followup_seed(alert)
    kept = Alert.from_dict(json.loads(seed))
    whole = followup_alert(alert, book, later, 900.0, reply_to=alert.key)
    assert whole is not None
    assert followup_alert(kept, book, later, 900.0, reply_to=alert.key) == whole
    # The chart, summary, stance and sources are not what a follow-up shows: not kept.
    assert "iVBORw0KGgo" not in seed and DEEPSEEK[1] not in seed and len(seed) < 1000
