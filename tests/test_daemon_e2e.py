"""The daemon end to end on loopback: feed host, Yahoo, Discord and Slack."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from tests.fakes.desk import Desk

DEEPSEEK_STORY = (
    "Nvidia shares plunge 17% as DeepSeek's cheap model rattles the AI trade",
    "Nvidia (NVDA) shares fell nearly 17% after Chinese startup DeepSeek said it trained "
    "a competitive model on H800 chips for about $5.6 million.",
)


def _story(messages: list[dict[str, Any]], needle: str) -> list[dict[str, Any]]:
    """The delivered messages that mention `needle` (price-move alerts may come between)."""
    return [m for m in messages if needle in json.dumps(m, ensure_ascii=False)]


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


async def test_a_new_story_reaches_discord_and_slack_with_stance_and_price(
    tmp_path: Path,
) -> None:
    async with Desk(tmp_path, feed_interval=1.0) as desk:
        desk.publish(*DEEPSEEK_STORY)
        took = await desk.wait_for(
            lambda: (
                _story(desk.discord.delivered(), "DeepSeek")
                and _story(desk.slack.delivered(), "DeepSeek")
            ),
            timeout=3.0 + 2.0,
        )
        assert took <= desk.feed_interval + 2.0

        [message] = _story(desk.discord.delivered(), "DeepSeek")
        embed = message["embeds"][0]
        discord_text = json.dumps(embed, ensure_ascii=False)
        assert "DeepSeek" in embed["title"]
        assert "bearish" in discord_text.lower()
        assert "NVDA" in discord_text and "%" in discord_text
        assert message["allowed_mentions"] == {"parse": []}
        # Discord takes files: the alert carries the intraday chart as a PNG.
        [posted] = [r for r in desk.discord.posts() if r.status == 200 and r.body is message]
        assert any(png.startswith(b"\x89PNG\r\n\x1a\n") for png in posted.files.values())

        [slack] = _story(desk.slack.delivered(), "DeepSeek")
        slack_text = json.dumps(slack, ensure_ascii=False)
        assert "DeepSeek" in slack_text and "bearish" in slack_text.lower()
        assert "NVDA" in slack_text

        # Every delivery is counted (a price-move alert may have gone out too); the count
        # follows the store's confirmation, a moment after the destination answered.
        for _ in range(40):
            metrics = await desk.metrics()
            counted = [
                _metric(metrics, "monitor_alerts_total", destination=d, outcome="sent")
                for d in ("discord", "slack")
            ]
            if counted == [len(desk.discord.delivered()), len(desk.slack.delivered())]:
                break
            await asyncio.sleep(0.05)
        assert counted == [len(desk.discord.delivered()), len(desk.slack.delivered())]
        assert min(counted) >= 1
        assert _metric(metrics, "monitor_items_seen_total", feed="wire") == 1
        assert _metric(metrics, "monitor_rule_matches_total", rule="deepseek-shock") == 1
        assert "monitor_publish_to_delivery_seconds_count" in metrics
        assert _metric(metrics, "monitor_feed_fetches_total", feed="wire", outcome="ok") >= 1


async def test_the_same_story_is_not_alerted_twice(tmp_path: Path) -> None:
    async with Desk(tmp_path) as desk:
        desk.publish(*DEEPSEEK_STORY)
        await desk.wait_for(lambda: _story(desk.discord.delivered(), "DeepSeek"), timeout=5)
        polls = desk.feeds.hits("/wire.xml")
        await desk.wait_for(lambda: desk.feeds.hits("/wire.xml") >= polls + 2, timeout=5)
        assert len(_story(desk.discord.delivered(), "DeepSeek")) == 1
        assert len(_story(desk.slack.delivered(), "DeepSeek")) == 1


async def test_editing_a_rule_file_changes_what_alerts_without_a_restart(tmp_path: Path) -> None:
    async with Desk(tmp_path) as desk:
        desk.publish("Quantum widget makers report record orders", "Widgets sold out.")
        polls = desk.feeds.hits("/wire.xml")
        await desk.wait_for(lambda: desk.feeds.hits("/wire.xml") >= polls + 2, timeout=5)
        assert _story(desk.discord.delivered(), "widget") == []

        rules = desk.rules_dir / "widgets.toml"
        rules.write_text(
            "[[rule]]\n"
            'id = "widgets"\n'
            'title = "Quantum widgets"\n'
            'description = "Any story about quantum widgets."\n'
            'severity = "notice"\n'
            "[rule.when]\n"
            'any = ["term:quantum widget"]\n',
            encoding="utf-8",
        )
        assert desk.daemon is not None
        await desk.wait_for(lambda: "widgets" in desk.daemon.rule_ids(), timeout=2.0 + 1.0)

        desk.publish("Quantum widget supply tightens further", "Lead times double.")
        await desk.wait_for(lambda: _story(desk.discord.delivered(), "widget"), timeout=5)
        [message] = _story(desk.discord.delivered(), "widget")
        assert "supply tightens" in message["embeds"][0]["title"]


async def test_a_broken_rule_edit_keeps_the_old_rules_and_readiness_says_so(
    tmp_path: Path,
) -> None:
    async with Desk(tmp_path) as desk:
        assert desk.daemon is not None
        before = desk.daemon.rule_ids()
        (desk.rules_dir / "broken.toml").write_text("[[rule]\nid = \n", encoding="utf-8")
        await desk.wait_for(lambda: desk.daemon is not None and desk.daemon.rule_error(), 3.0)
        assert desk.daemon.rule_ids() == before
        assert "broken.toml:1" in (desk.daemon.rule_error() or "")
        status, body = await desk.get("/readyz")
        assert status == 503
        assert "broken.toml" in body

        desk.publish(*DEEPSEEK_STORY)
        await desk.wait_for(lambda: _story(desk.discord.delivered(), "DeepSeek"), timeout=5)


async def test_health_endpoints(tmp_path: Path) -> None:
    async with Desk(tmp_path) as desk:
        status, body = await desk.get("/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        await desk.wait_for(lambda: desk.discord.posts() is not None, 1)
        status, body = await desk.get("/readyz")
        checks = json.loads(body)["checks"]
        assert checks["store"]["ok"] and checks["rules"]["ok"]
        assert checks["prices"]["ok"], checks["prices"]
        assert status == 200
        metrics = await desk.metrics()
        assert "# TYPE monitor_outbox_depth gauge" in metrics
        assert _metric(metrics, "monitor_price_ticks_total", provider="yahoo") > 0


async def test_a_followup_reports_the_move_since_the_alert(tmp_path: Path) -> None:
    async with Desk(tmp_path, followups=(1.5,)) as desk:
        desk.publish(*DEEPSEEK_STORY)
        await desk.wait_for(lambda: _story(desk.slack.delivered(), "since alert"), timeout=8)
        [followup] = _story(desk.slack.delivered(), "since alert")
        assert followup["text"].startswith("+2s: NVDA ")
        assert "plunge 17%" in json.dumps(followup, ensure_ascii=False)  # names its story

        # Discord can edit: the original message itself gains the move since the alert,
        # and no second message pings the channel.
        await desk.wait_for(
            lambda: any(r.method == "PATCH" for r in desk.discord.received), timeout=5
        )
        assert _story(desk.discord.delivered(), "since alert") == []
        [story] = _story(desk.discord.delivered(), "DeepSeek")
        edited = [r for r in desk.discord.received if r.method == "PATCH" and r.status == 200]
        assert edited and "since alert" in json.dumps(edited[-1].body, ensure_ascii=False)
        assert "DeepSeek" in json.dumps(edited[-1].body, ensure_ascii=False)
        assert story["embeds"][0]["title"] in json.dumps(edited[-1].body, ensure_ascii=False)
