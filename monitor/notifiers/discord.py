"""Discord: alerts as embeds through discord.py's webhook client.

Posts on the process's own aiohttp session, always with allowed_mentions
{"parse": []} so feed text cannot ping anyone, and fits every embed into
Discord's limits by trimming text rather than being refused (400 / 50035).
discord.py's own transport sleeps and retries on 429 and 5xx; here one
request is one attempt and the dispatcher owns retries, so the webhook runs on
a single-attempt adapter that maps each answer onto the delivery error tree.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from monitor.config import NotifierConfig
from monitor.core import render
from monitor.core.errors import ConfigError, RetryableDeliveryError
from monitor.core.models import Alert
from monitor.notifiers._http import DEFAULT_TIMEOUT_S, Scrubber, error_for_status
from monitor.ports import Delivery

with warnings.catch_warnings():
    # discord.py imports audioop for voice, deprecated since 3.11; voice is never used here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord.http import Route
    from discord.webhook.async_ import AsyncWebhookAdapter, async_context

# Discord's documented limits for webhook messages.
CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
GONE_CODES = {10015, 50027}  # unknown webhook, invalid webhook token
CHART_NAME = "chart.png"
CHARTED_KEPT = 5000  # messages remembered as carrying a chart, for their edits
NO_MENTIONS = discord.AllowedMentions.none()  # feed text must never ping anyone

_URL = re.compile(r"^(https?://[^/]+)/api(/v\d+)?/webhooks/(\d+)/([^/?#]+)")


def parse_webhook_url(url: str) -> tuple[str, int, str]:
    """(API base, webhook id, token) from a webhook URL on any host.

    The base keeps the URL's own scheme and host, so a local server works too.
    """
    m = _URL.match(url.strip())
    if not m:
        raise ConfigError(
            "discord webhook URL must look like https://discord.com/api/webhooks/<id>/<token>"
        )
    host, version, wid, token = m.groups()
    return f"{host}/api{version or '/v10'}", int(wid), token


def bucket_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until Discord's bucket refills when the answer says none are left."""
    if headers.get("X-RateLimit-Remaining") != "0":
        return None
    try:
        return max(0.0, float(headers.get("X-RateLimit-Reset-After", "")))
    except ValueError:
        return None


class _SingleAttemptAdapter(AsyncWebhookAdapter):
    """discord.py's webhook transport reduced to one attempt against our base URL."""

    def __init__(self, base: str, destination: str, scrub: Scrubber, timeout_s: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._base = base
        self._destination = destination
        self._scrub = scrub
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.wait_s: float | None = None  # from the last success's rate-limit headers

    async def request(
        self,
        route: Route,
        session: aiohttp.ClientSession,
        *,
        payload: dict[str, Any] | None = None,
        multipart: list[dict[str, Any]] | None = None,
        files: Any = None,
        params: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        url = self._base + route.url[len(Route.BASE) :]
        data: Any = None
        headers: dict[str, str] = {}
        if multipart:
            form = aiohttp.FormData(quote_fields=False)
            for part in multipart:
                form.add_field(**part)
            data = form
        elif payload is not None:
            headers["Content-Type"] = "application/json"
            data = discord.utils._to_json(payload)
        try:
            async with session.request(
                route.method, url, data=data, headers=headers, params=params, timeout=self._timeout
            ) as resp:
                text = await resp.text(encoding="utf-8")
                body: Any = None
                if resp.content_type == "application/json":
                    try:
                        body = discord.utils._from_json(text)
                    except ValueError:
                        body = None
                if 200 <= resp.status < 300:
                    self.wait_s = bucket_wait(resp.headers)
                    return body
                code = body.get("code") if isinstance(body, dict) else None
                retry = body.get("retry_after") if isinstance(body, dict) else None
                raise error_for_status(
                    self._destination,
                    resp.status,
                    text,
                    resp.headers,
                    gone=resp.status in (401, 404) and (code in GONE_CODES or code is None),
                    retry_after_body=retry,
                    scrub=self._scrub,
                )
        except (aiohttp.ClientError, TimeoutError) as e:
            reason = self._scrub(str(e)) or type(e).__name__
            raise RetryableDeliveryError(f"{self._destination}: {reason}") from e


def _label(text: str) -> str:
    """Link text that cannot close the link early: brackets escaped ([속보] is common)."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _masked(text: str, url: str) -> str:
    return f"[{_label(text)}]({url})" if url else text


def _field(name: str, value: str, inline: bool = False) -> dict[str, Any]:
    return {
        "name": render.truncate(name, FIELD_NAME_MAX),
        "value": render.truncate(value or "—", FIELD_VALUE_MAX),
        "inline": inline,
    }


def embed_size(embed: dict[str, Any]) -> int:
    """Characters Discord counts towards the 6000 total."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", ""))
    size += len(embed.get("author", {}).get("name", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """Trim the description, then fields from the end, until the embed fits 6000."""
    out = dict(embed)
    over = embed_size(out) - EMBED_TOTAL_MAX
    if over > 0 and out.get("description"):
        desc = out["description"]
        out["description"] = render.truncate(desc, max(0, len(desc) - over))
    fields = list(out.get("fields", []))
    while embed_size(out) > EMBED_TOTAL_MAX and fields:
        fields.pop()
        out["fields"] = fields
    return out


def build_embed(alert: Alert) -> dict[str, Any]:
    """The embed for one alert, within every per-field limit."""
    embed: dict[str, Any] = {
        "title": render.truncate(render.headline(alert), TITLE_MAX),
        "color": render.alert_colour(alert),
    }
    if alert.link:
        embed["url"] = alert.link
    if alert.published or alert.created_at:
        embed["timestamp"] = (alert.published or alert.created_at).isoformat()
    fields: list[dict[str, Any]] = []
    if alert.kind == "digest":
        lines = [f"• {_masked(render.digest_line(c), c.link)}" for c in alert.children]
        embed["description"] = render.truncate_lines(lines, DESCRIPTION_MAX)
    else:
        if alert.summary:
            embed["description"] = render.truncate(alert.summary, DESCRIPTION_MAX)
        for s in alert.stance:
            fields.append(_field(render.stance_label(s), render.stance_evidence(s)))
        fields += [_field(p.symbol, render.price_line(p), inline=True) for p in alert.prices]
        if alert.published:
            fields.append(_field("Published", render.format_times(alert.published), inline=True))
        if alert.rules:
            fields.append(_field("Rule", f"{render.rule_line(alert)} ({alert.severity})", True))
        if alert.entities:
            fields.append(_field("Entities", render.entity_line(alert), inline=True))
        refs = render.sources_of(alert)
        if refs:
            lines = [_masked(render.source_line(r), r.link) for r in refs]
            fields.append(
                _field(f"Sources ({len(refs)})", render.truncate_lines(lines, FIELD_VALUE_MAX))
            )
    embed["fields"] = fields[:FIELDS_MAX]
    lang = render.LANG_NAMES.get(alert.lang, alert.lang)
    footer = " · ".join(p for p in ("semis-monitor", alert.source, lang) if p)
    embed["footer"] = {"text": render.truncate(footer, FOOTER_MAX)}
    return fit_embed(embed)


class DiscordNotifier:
    """Posts alerts to one Discord webhook; can edit what it posted."""

    kind: ClassVar[str] = "discord"
    max_per_window: ClassVar[int] = 5
    window_s: ClassVar[float] = 2.0
    can_edit: ClassVar[bool] = True

    def __init__(
        self,
        config: NotifierConfig,
        session: aiohttp.ClientSession,
        url: str | None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not url:
            raise ConfigError(f"notifiers.{config.name}: a discord notifier needs a URL")
        self.name = config.name
        base, webhook_id, token = parse_webhook_url(url)
        scrub = Scrubber(url)
        self._adapter = _SingleAttemptAdapter(base, self.name, scrub, timeout_s)
        self._webhook = discord.Webhook.partial(webhook_id, token, session=session)
        self._charts = config.chart
        # Messages posted here with a chart: an edit keeps the retained attachment
        # inside the embed (otherwise it drops out and shows below it, bare).
        self._charted: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"DiscordNotifier(name={self.name!r})"

    async def send(self, alert: Alert) -> Delivery:
        data = build_embed(alert)
        chart = self._chart(alert)
        if chart is not None:
            data["image"] = {"url": f"attachment://{CHART_NAME}"}
        embed = discord.Embed.from_dict(data)
        token = async_context.set(self._adapter)
        try:
            if chart is not None:  # multipart: the PNG rides along, the embed shows it
                message = await self._webhook.send(
                    embeds=[embed], file=chart, allowed_mentions=NO_MENTIONS, wait=True
                )
            else:
                message = await self._webhook.send(
                    embeds=[embed], allowed_mentions=NO_MENTIONS, wait=True
                )
        finally:
            async_context.reset(token)
        ref = str(message.id)
        if chart is not None:
            self._charted[ref] = None
            while len(self._charted) > CHARTED_KEPT:
                self._charted.popitem(last=False)
        return Delivery(message_ref=ref, wait_s=self._adapter.wait_s)

    def _chart(self, alert: Alert) -> discord.File | None:
        if not (self._charts and alert.chart_png and alert.kind != "digest"):
            return None
        try:
            png = base64.b64decode(alert.chart_png, validate=True)
        except ValueError:
            return None  # a damaged chart is not worth losing the alert over
        return discord.File(io.BytesIO(png), filename=CHART_NAME)

    async def edit(self, message_ref: str, alert: Alert) -> Delivery:
        data = build_embed(alert)
        if message_ref in self._charted:
            # Attachments not named in an edit are retained; the embed points at it again.
            data["image"] = {"url": f"attachment://{CHART_NAME}"}
        embed = discord.Embed.from_dict(data)
        token = async_context.set(self._adapter)
        try:
            await self._webhook.edit_message(
                int(message_ref), embeds=[embed], allowed_mentions=NO_MENTIONS
            )
        finally:
            async_context.reset(token)
        return Delivery(message_ref=message_ref, wait_s=self._adapter.wait_s)

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to the caller."""
