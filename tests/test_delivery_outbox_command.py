"""`monitor outbox`: what an operator sees after a webhook was deleted, and the retry."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.clock import SystemClock
from monitor.commands import outbox as outbox_command
from monitor.config import NotifierConfig
from monitor.notifiers.registry import make_notifier
from monitor.ports import FeedState, NewOutboxEntry
from monitor.store import open_store
from tests.fakes.alerts import news_alert
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack


async def deliver_into_trouble(url: str) -> str:
    """A deleted Discord webhook and a Slack message refused: returns the Discord token."""
    store = open_store(url)
    await store.open()
    entries = [NewOutboxEntry("desk", news_alert(i), f"k{i}") for i in range(2)]
    entries += [NewOutboxEntry("team", news_alert(7), "k7")]
    await store.commit_poll(FeedState(name="yonhap-economy"), [], [], entries)
    async with FakeDiscord() as discord, FakeSlack() as slack, aiohttp.ClientSession() as s:
        discord.delete_webhook()
        slack.fail_next(1, 400, "invalid_payload")
        cfg = {"desk": ("discord", discord.url), "team": ("slack", slack.url)}
        notifiers = {
            name: make_notifier(NotifierConfig(name=name, kind=kind, url_env="X"), s, u)  # type: ignore[arg-type]
            for name, (kind, u) in cfg.items()
        }
        await Dispatcher(
            store, notifiers, SystemClock(), "t", settings=DispatchSettings(idle_s=0.02)
        ).drain(3.0)
    await store.close()
    return discord.token


def main(argv: list[str]) -> int:
    """The `monitor outbox` command exactly as the CLI registers and runs it."""
    parser = argparse.ArgumentParser(prog="monitor")
    outbox_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, str]:
    db = tmp_path / "monitor.db"
    url = f"sqlite:///{db}"
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    token = asyncio.run(deliver_into_trouble(url))
    return config, url, token


def test_outbox_lists_broken_destinations_failed_and_rejected_rows(setup, capsys) -> None:
    config, _, token = setup
    assert main(["outbox", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "BROKEN destination desk" in out and "10015" in out
    assert out.count(" failed ") == 2 and out.count(" rejected ") == 1
    assert "invalid_payload" in out
    assert "2 failed, 1 rejected" in out
    assert token not in out


def test_outbox_json_and_filters(setup, capsys) -> None:
    config, _, _ = setup
    assert main(["outbox", "--config", str(config), "--json", "--destination", "team"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["destination"], x.get("status")) for x in lines] == [
        ("team", "rejected"),
        ("team", None),
    ]
    assert lines[0]["title"] == news_alert(7).title


def test_retry_requeues_and_clears_the_broken_mark(setup, capsys) -> None:
    config, url, _ = setup
    assert main(["outbox", "--config", str(config), "--retry", "--destination", "desk"]) == 0
    out = capsys.readouterr().out
    assert "destination desk: broken mark cleared" in out and "requeued 2 of 2" in out

    async def state() -> tuple[list[str], bool]:
        store = open_store(url)
        await store.open()
        rows = await store.list_outbox()
        broken = any(d.broken for d in await store.load_destinations())
        await store.close()
        return [f"{r.destination}:{r.status}" for r in rows], broken

    rows, broken = asyncio.run(state())
    assert rows == ["desk:pending", "desk:pending", "team:rejected"] and not broken
    assert main(["outbox", "--config", str(config), "--retry"]) == 0
    assert "requeued 1 of 1" in capsys.readouterr().out
