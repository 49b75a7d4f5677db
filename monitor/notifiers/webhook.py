"""Generic JSON webhook: the alert as JSON, signed with HMAC-SHA256.

Body: {"event": kind, "key": ..., "text": plain text, "alert": Alert.to_dict()}.
Headers: `X-Monitor-Signature: sha256=<hex>` over the exact body bytes with the
shared secret (when one is configured), `X-Monitor-Event` and
`Idempotency-Key` (the outbox dedupe key of the alert) so that a receiver can
drop the duplicates at-least-once delivery may produce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import ClassVar

import aiohttp

from monitor.config import NotifierConfig
from monitor.core import render
from monitor.core.errors import ConfigError, RetryableDeliveryError
from monitor.core.models import Alert
from monitor.notifiers._http import DEFAULT_TIMEOUT_S, Scrubber, error_for_status
from monitor.ports import Delivery

SIGNATURE_HEADER = "X-Monitor-Signature"


def sign(secret: bytes, body: bytes) -> str:
    """'sha256=<hex>' of HMAC-SHA256(secret, body): what a receiver recomputes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def encode(alert: Alert) -> bytes:
    payload = {
        "event": alert.kind,
        "key": alert.key,
        "text": render.plain_text(alert),
        "alert": alert.to_dict(),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookNotifier:
    """POSTs signed JSON to any HTTP endpoint."""

    kind: ClassVar[str] = "webhook"
    max_per_window: ClassVar[int] = 10
    window_s: ClassVar[float] = 1.0
    can_edit: ClassVar[bool] = False

    def __init__(
        self,
        config: NotifierConfig,
        session: aiohttp.ClientSession,
        url: str | None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not url or not url.startswith(("https://", "http://")):
            raise ConfigError(f"notifiers.{config.name}: a webhook notifier needs an http(s) URL")
        self.name = config.name
        self._url = url
        self._session = session
        self._scrub = Scrubber(url)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._secret: bytes | None = None
        if config.secret_env:
            env = os.environ if environ is None else environ
            value = env.get(config.secret_env, "")
            if not value:
                raise ConfigError(
                    f"notifiers.{config.name}: environment variable {config.secret_env} is not set"
                )
            self._secret = value.encode("utf-8")

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, signed={self._secret is not None})"

    async def send(self, alert: Alert) -> Delivery:
        body = encode(alert)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Monitor-Event": alert.kind,
            "Idempotency-Key": alert.key,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                text = await resp.text(errors="replace")
                if 200 <= resp.status < 300:
                    return Delivery(message_ref=None)
                raise error_for_status(
                    self.name,
                    resp.status,
                    text,
                    resp.headers,
                    gone=resp.status == 410,
                    scrub=self._scrub,
                )
        except (aiohttp.ClientError, TimeoutError) as e:
            reason = self._scrub(str(e)) or type(e).__name__
            raise RetryableDeliveryError(f"{self.name}: {reason}") from e

    async def edit(self, message_ref: str, alert: Alert) -> Delivery:
        raise NotImplementedError("a generic webhook has no messages to edit")

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to the caller."""
