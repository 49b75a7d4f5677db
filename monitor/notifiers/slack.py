"""Slack: alerts as Block Kit messages through slack_sdk's async webhook client.

Every message carries a plain `text` fallback (notifications and old
clients show it). slack_sdk does not raise on error answers and would retry
connection errors by itself; here its retry handlers are off and the status is
mapped onto the delivery error tree, so the dispatcher owns retries.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from monitor.config import NotifierConfig
from monitor.core import render
from monitor.core.errors import ConfigError, RetryableDeliveryError
from monitor.core.models import Alert
from monitor.notifiers._http import DEFAULT_TIMEOUT_S, Scrubber, error_for_status, private_logger
from monitor.ports import Delivery

# Slack's documented limits for incoming webhooks.
BLOCKS_MAX = 50
SECTION_TEXT_MAX = 3000
HEADER_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
TEXT_FALLBACK_MAX = 3000
# Errors that say the webhook or its channel is gone, not that this message was bad.
GONE = {
    "channel_not_found",
    "channel_is_archived",
    "no_service",
    "no_active_hooks",
    "invalid_token",
    "team_disabled",
    "no_service_id",
}


def escape(text: str) -> str:
    """Slack mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    safe_label = escape(label).replace("|", "¦")
    return f"<{url}|{safe_label}>" if url else safe_label


def _section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": render.truncate(text, SECTION_TEXT_MAX)},
    }


def _context(parts: list[str]) -> dict[str, Any]:
    elements = [
        {"type": "mrkdwn", "text": render.truncate(p, SECTION_TEXT_MAX)}
        for p in parts[:CONTEXT_ELEMENTS_MAX]
        if p
    ]
    return {"type": "context", "elements": elements}


def build_blocks(alert: Alert) -> list[dict[str, Any]]:
    """Block Kit blocks for one alert, within Slack's limits."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": render.truncate(render.headline(alert), HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    if alert.kind == "digest":
        lines = [f"• {_link(c.link, render.digest_line(c))}" for c in alert.children]
        blocks.append(_section(render.truncate_lines(lines, SECTION_TEXT_MAX)))
        return blocks
    lang = render.LANG_NAMES.get(alert.lang, alert.lang)
    blocks.append(
        _context(
            [escape(p) for p in (alert.source, lang, render.format_times(alert.published)) if p]
        )
    )
    if alert.link:
        blocks.append(_section(_link(alert.link, alert.title)))
    for s in alert.stance:
        evidence = render.stance_evidence(s)
        blocks.append(
            _section(
                f"*{escape(render.stance_label(s))}*"
                + (f"\n>{escape(evidence)}" if evidence else "")
            )
        )
    if alert.prices:
        blocks.append(_section("\n".join(escape(render.price_line(p)) for p in alert.prices)))
    meta = []
    if alert.rules:
        meta.append(f"rule: {escape(render.rule_line(alert))} ({alert.severity})")
    if alert.entities:
        meta.append(f"entities: {escape(render.entity_line(alert))}")
    if meta:
        blocks.append(_context(meta))
    refs = render.sources_of(alert)
    if len(refs) > 1 or (refs and not alert.link):
        lines = [_link(r.link, render.source_line(r)) for r in refs]
        blocks.append(
            _section(
                f"*Sources ({len(refs)})*\n" + render.truncate_lines(lines, SECTION_TEXT_MAX - 20)
            )
        )
    return blocks[:BLOCKS_MAX]


class SlackNotifier:
    """Posts alerts to one Slack incoming webhook."""

    kind: ClassVar[str] = "slack"
    max_per_window: ClassVar[int] = 1
    window_s: ClassVar[float] = 1.0
    can_edit: ClassVar[bool] = False

    def __init__(
        self,
        config: NotifierConfig,
        session: aiohttp.ClientSession,
        url: str | None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not url or not url.startswith(("https://", "http://")):
            raise ConfigError(f"notifiers.{config.name}: a slack notifier needs an http(s) URL")
        self.name = config.name
        self._scrub = Scrubber(url)
        self._client = AsyncWebhookClient(
            url,
            timeout=max(1, round(timeout_s)),
            session=session,
            logger=private_logger(f"slack.{self.name}", self._scrub),
            retry_handlers=[],
        )

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r})"

    async def send(self, alert: Alert) -> Delivery:
        body = {
            "text": render.plain_text(alert, TEXT_FALLBACK_MAX),
            "blocks": build_blocks(alert),
            "unfurl_links": False,
        }
        try:
            resp = await self._client.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as e:
            reason = self._scrub(str(e)) or type(e).__name__
            raise RetryableDeliveryError(f"{self.name}: {reason}") from e
        if 200 <= resp.status_code < 300:
            return Delivery(message_ref=None)
        text = (resp.body or "").strip()
        raise error_for_status(
            self.name,
            resp.status_code,
            text,
            _headers(resp.headers),
            gone=resp.status_code in (403, 404, 410) and text in GONE,
            scrub=self._scrub,
        )

    async def edit(self, message_ref: str, alert: Alert) -> Delivery:
        raise NotImplementedError("incoming webhooks cannot edit messages")

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to the caller."""


def _headers(raw: Any) -> dict[str, str]:
    """slack_sdk hands back aiohttp's multidict or a dict of lists; flatten to str."""
    out: dict[str, str] = {}
    for key, value in dict(raw or {}).items():
        out[str(key).title()] = str(value[0] if isinstance(value, list) and value else value)
    return out
