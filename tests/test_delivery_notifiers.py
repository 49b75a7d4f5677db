"""Notifiers against local servers that speak Discord's, Slack's and a plain webhook's protocol."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.config import NotifierConfig
from monitor.core.errors import (
    ConfigError,
    DestinationGoneError,
    RejectedDeliveryError,
    RetryableDeliveryError,
)
from monitor.core.models import SourceRef
from monitor.core.routing import make_digest
from monitor.notifiers.console import ConsoleNotifier
from monitor.notifiers.discord import EMBED_TOTAL_MAX, DiscordNotifier, embed_size
from monitor.notifiers.registry import NOTIFIERS, make_notifier
from monitor.notifiers.slack import SlackNotifier
from monitor.notifiers.webhook import WebhookNotifier
from tests.fakes.alerts import T0, news_alert
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def cfg(kind: str, name: str = "dest", **extra: Any) -> NotifierConfig:
    if kind != "console":
        extra.setdefault("url_env", "UNUSED")
    return NotifierConfig(name=name, kind=kind, **extra)  # type: ignore[arg-type]


def three_sources() -> tuple[SourceRef, ...]:
    return (
        SourceRef("yonhap-economy", "연합뉴스", "[속보] 딥시크 충격", "https://yna.co.kr/a", "ko"),
        SourceRef("hankyung-it", "한국경제", "[종합] 딥시크 충격", "https://hankyung.com/b", "ko"),
        SourceRef(
            "gnews-ko-nvidia",
            "Google 뉴스",
            "딥시크 충격 - 매일경제",
            "https://news.google.com/c",
            "ko",
        ),
    )


# ------------------------------------------------------------------------------- Discord


async def test_discord_posts_one_embed_with_everything_a_trader_needs(session) -> None:
    async with FakeDiscord() as fake:
        notifier = make_notifier(cfg("discord"), session, fake.url)
        delivery = await notifier.send(news_alert(1, sources=three_sources()))

    [req] = fake.received
    assert req.path == f"/api/v10/webhooks/{fake.webhook_id}/{fake.token}"
    assert req.query["wait"] == "1"
    assert req.headers["Content-Type"] == "application/json"
    assert req.body["allowed_mentions"] == {"parse": []}
    [embed] = req.body["embeds"]
    assert embed["title"] == "[속보] 딥시크 충격에 엔비디아 주가 급락 1"
    assert embed["url"] == "https://www.yna.co.kr/view/AKR20250127000001"
    assert embed["color"] == 0xE74C3C  # bearish red
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["🔴 nvidia: bearish (-0.62)"] == "“엔비디아 주가는 16.97% 급락했다”"
    assert fields["NVDA"].startswith("NVDA $118.42 (-16.97% vs prev close)")
    assert fields["Published"] == "2025-01-27 23:27 KST · 01-27 09:27 ET"
    assert fields["Rule"] == "DeepSeek shock (warning)"
    assert fields["Entities"] == "deepseek, nvidia"
    assert "연합뉴스" in fields["Sources (3)"] and "Google 뉴스" in fields["Sources (3)"]
    assert embed["footer"]["text"] == "semis-monitor · 연합뉴스 · Korean"
    assert delivery.message_ref == next(iter(fake.messages))


async def test_discord_trims_oversized_alerts_instead_of_being_refused(session) -> None:
    huge = "엔비디아 " * 3000
    many = tuple(
        SourceRef(f"feed{i}", f"매체{i}", huge[:300], f"https://x.kr/{i}", "ko") for i in range(80)
    )
    alert = news_alert(
        2,
        title=huge,
        summary=huge,
        sources=many,
        rule_titles=(huge,),
        entities=tuple(f"e{i}" for i in range(400)),
    )
    async with FakeDiscord() as fake:
        notifier = make_notifier(cfg("discord"), session, fake.url)
        await notifier.send(alert)
        digest = make_digest([news_alert(i, title=huge[:500]) for i in range(60)], "dest", T0)
        await notifier.send(digest)

    assert [r.status for r in fake.received] == [200, 200]  # the fake refuses 400/50035
    single, folded = (body["embeds"][0] for body in fake.delivered())
    assert embed_size(single) <= EMBED_TOTAL_MAX and embed_size(folded) <= EMBED_TOTAL_MAX
    assert len(single["title"]) <= 256 and single["title"].endswith("…")
    assert folded["title"] == "Digest: 60 alerts in 1 min"
    assert folded["description"].endswith("more")  # "… +N more"


@pytest.mark.parametrize(
    ("script", "error", "retry_after"),
    [
        ("rate_limit", RetryableDeliveryError, 1.5),
        ("rate_limit_without_via", RetryableDeliveryError, 1.5),
        ("server_error", RetryableDeliveryError, None),
        ("gone", DestinationGoneError, None),
    ],
)
async def test_discord_answers_map_to_the_error_tree_in_one_request(
    session, script: str, error: type[Exception], retry_after: float | None
) -> None:
    async with FakeDiscord() as fake:
        if script.startswith("rate_limit"):
            fake.rate_limit_next(1, retry_after=1.5, via=script == "rate_limit")
        elif script == "server_error":
            fake.fail_next(1, 502)
        else:
            fake.delete_webhook()
        notifier = make_notifier(cfg("discord"), session, fake.url)
        with pytest.raises(error) as info:
            await notifier.send(news_alert(3))
    assert len(fake.received) == 1, "discord.py must not sleep and retry on its own"
    if isinstance(info.value, RetryableDeliveryError):
        assert info.value.retry_after == retry_after
    assert fake.token not in str(info.value)


async def test_discord_invalid_form_body_is_rejected_not_gone(session) -> None:
    async with FakeDiscord() as fake:
        fake.reject_next(50035)
        notifier = make_notifier(cfg("discord"), session, fake.url)
        with pytest.raises(RejectedDeliveryError) as info:
            await notifier.send(news_alert(4))
    assert not isinstance(info.value, DestinationGoneError)
    assert "50035" in str(info.value)


async def test_discord_edits_the_message_it_posted(session) -> None:
    async with FakeDiscord() as fake:
        notifier = make_notifier(cfg("discord"), session, fake.url)
        sent = await notifier.send(news_alert(5))
        assert sent.message_ref is not None
        await notifier.edit(sent.message_ref, news_alert(5, sources=three_sources()))
    patch = fake.received[-1]
    assert patch.method == "PATCH"
    assert patch.path.endswith(f"/messages/{sent.message_ref}")
    assert patch.body["allowed_mentions"] == {"parse": []}
    assert "Sources (3)" in [
        f["name"] for f in fake.messages[sent.message_ref]["embeds"][0]["fields"]
    ]


async def test_discord_edit_keeps_the_chart_inside_the_embed(session) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
    async with FakeDiscord() as fake:
        notifier = make_notifier(cfg("discord"), session, fake.url)
        charted = await notifier.send(news_alert(6, chart_png=png))
        plain = await notifier.send(news_alert(7))
        assert charted.message_ref is not None and plain.message_ref is not None
        # what the dispatcher keeps for an edit has no PNG: the message still has it
        await notifier.edit(charted.message_ref, news_alert(6, sources=three_sources()))
        await notifier.edit(plain.message_ref, news_alert(7, sources=three_sources()))
    charted_embed = fake.messages[charted.message_ref]["embeds"][0]
    plain_embed = fake.messages[plain.message_ref]["embeds"][0]
    assert charted_embed["image"] == {"url": "attachment://chart.png"}
    assert "image" not in plain_embed
    assert "attachments" not in fake.received[-2].body  # retained, not replaced


async def test_discord_url_must_be_a_webhook_url_and_is_never_echoed(session) -> None:
    with pytest.raises(ConfigError) as info:
        DiscordNotifier(cfg("discord"), session, "https://discord.com/channels/1/secretpart")
    assert "secretpart" not in str(info.value)


async def test_connection_errors_are_retryable_and_carry_no_token(session) -> None:
    async with FakeDiscord() as fake:
        url = fake.url
    notifier = make_notifier(cfg("discord"), session, url)  # the server is gone: refused
    with pytest.raises(RetryableDeliveryError) as info:
        await notifier.send(news_alert(6))
    assert "fake-token" not in str(info.value)
    assert "fake-token" not in repr(notifier)


# ------------------------------------------------------------------------------- Slack


async def test_slack_posts_blocks_with_a_text_fallback(session) -> None:
    async with FakeSlack() as fake:
        notifier = make_notifier(cfg("slack"), session, fake.url)
        delivery = await notifier.send(news_alert(7, sources=three_sources()))
    [req] = fake.received
    assert req.status == 200 and delivery.message_ref is None
    assert req.headers["Content-Type"] == "application/json;charset=utf-8"
    body = req.body
    assert body["text"].startswith("[속보] 딥시크 충격에 엔비디아 주가 급락 7\n연합뉴스 · Korean")
    assert body["blocks"][0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "[속보] 딥시크 충격에 엔비디아 주가 급락 7",
            "emoji": True,
        },
    }
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert "*🔴 nvidia: bearish (-0.62)*\n>“엔비디아 주가는 16.97% 급락했다”" in sections
    assert any(s.startswith("*Sources (3)*") for s in sections)
    assert any("NVDA $118.42" in s for s in sections)


async def test_slack_escapes_feed_text_so_it_cannot_mention_anyone(session) -> None:
    async with FakeSlack() as fake:
        notifier = make_notifier(cfg("slack"), session, fake.url)
        await notifier.send(news_alert(8, title="<!channel> 엔비디아 & <@U123>"))
    header = fake.received[0].body["blocks"][0]["text"]["text"]
    assert "<!channel>" in header  # plain_text header is never parsed as markup
    link = next(
        b
        for b in fake.received[0].body["blocks"]
        if b["type"] == "section" and "yna.co.kr" in b["text"]["text"]
    )
    assert "&lt;!channel&gt; 엔비디아 &amp; &lt;@U123&gt;" in link["text"]["text"]


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (429, "rate_limited", RetryableDeliveryError),
        (500, "internal_error", RetryableDeliveryError),
        (400, "invalid_payload", RejectedDeliveryError),
        (403, "action_prohibited", RejectedDeliveryError),
        (404, "channel_not_found", DestinationGoneError),
        (410, "channel_is_archived", DestinationGoneError),
    ],
)
async def test_slack_answers_map_to_the_error_tree(
    session, status: int, text: str, error: type[Exception]
) -> None:
    async with FakeSlack() as fake:
        if status == 429:
            fake.rate_limit_next(1, retry_after=1)
        else:
            fake.fail_next(1, status, text)
        notifier = make_notifier(cfg("slack"), session, fake.url)
        with pytest.raises(error) as info:
            await notifier.send(news_alert(9))
    assert type(info.value) is error
    assert len(fake.received) == 1, "slack_sdk must not retry on its own"
    if status == 429:
        assert isinstance(info.value, RetryableDeliveryError)
        assert info.value.retry_after == 1.0
    assert "slackSecretToken" not in str(info.value)


# ------------------------------------------------------------------------------- webhook


async def test_generic_webhook_signs_the_exact_body(session) -> None:
    got: list[tuple[bytes, dict[str, str]]] = []

    async def receive(request: web.Request) -> web.Response:
        got.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        notifier = WebhookNotifier(
            cfg("webhook", secret_env="HOOK_SECRET"),
            session,
            url,
            environ={"HOOK_SECRET": "s3cret"},
        )
        await notifier.send(news_alert(10))
    finally:
        await runner.cleanup()
    [(body, headers)] = got
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Monitor-Signature"] == expected
    assert headers["Idempotency-Key"] == "story:0010"
    payload = json.loads(body)
    assert payload["event"] == "news" and payload["alert"]["title"].endswith("급락 10")
    assert "s3cret" not in repr(notifier)


def test_webhook_needs_its_secret_when_one_is_configured() -> None:
    with pytest.raises(ConfigError, match="HOOK_SECRET"):
        WebhookNotifier(
            cfg("webhook", secret_env="HOOK_SECRET"),
            None,  # type: ignore[arg-type]
            "https://example.com/hook",
            environ={},
        )


# ------------------------------------------------------------------------------- console


@pytest.mark.parametrize("colour", [True, False])
async def test_console_prints_a_readable_block(colour: bool) -> None:
    out = io.StringIO()
    notifier = ConsoleNotifier(cfg("console", color=colour), stream=out)
    await notifier.send(news_alert(11, sources=three_sources()))
    text = out.getvalue()
    assert "[속보] 딥시크 충격에 엔비디아 주가 급락 11" in text
    assert "2025-01-27 23:27 KST · 01-27 09:27 ET" in text
    assert "“엔비디아 주가는 16.97% 급락했다”" in text
    assert "sources (3)" in text
    assert ("\x1b[31m🔴 nvidia: bearish (-0.62)\x1b[0m" in text) is colour
    assert ("\x1b[" in text) is colour


def test_registry_knows_every_configurable_kind() -> None:
    assert set(NOTIFIERS) == {"discord", "slack", "webhook", "console"}
    for cls in NOTIFIERS.values():
        assert cls.max_per_window >= 1 and cls.window_s > 0
    assert DiscordNotifier.can_edit and not SlackNotifier.can_edit
    assert (DiscordNotifier.max_per_window, DiscordNotifier.window_s) == (5, 2.0)
    assert (SlackNotifier.max_per_window, SlackNotifier.window_s) == (1, 1.0)


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "3"}, RetryableDeliveryError, 3.0),
        (503, {}, RetryableDeliveryError, None),
        (410, {}, DestinationGoneError, None),
        (400, {}, RejectedDeliveryError, None),
    ],
)
async def test_generic_webhook_answers_map_to_the_error_tree(
    session, status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=status, text="no", headers=headers)

    app = web.Application()
    app.router.add_post("/hook/{secret}", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook/hookSecretPath0123"
    try:
        with pytest.raises(error) as info:
            await make_notifier(cfg("webhook"), session, url).send(news_alert(12))
    finally:
        await runner.cleanup()
    assert type(info.value) is error
    assert getattr(info.value, "retry_after", None) == retry_after
    assert "hookSecretPath0123" not in str(info.value)
