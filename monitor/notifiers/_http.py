"""What every HTTP notifier shares: reading Retry-After, mapping a status to
the delivery error tree, and keeping the webhook URL out of every message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from monitor.core.errors import (
    DeliveryError,
    DestinationGoneError,
    RejectedDeliveryError,
    RetryableDeliveryError,
)
from monitor.core.redact import redact

DEFAULT_TIMEOUT_S = 15.0
MAX_BODY_IN_ERROR = 200


def retry_after_from(headers: Mapping[str, str], body_value: object = None) -> float | None:
    """Seconds to wait: the body's `retry_after` (Discord, precise) else Retry-After."""
    if isinstance(body_value, int | float) and not isinstance(body_value, bool):
        return max(0.0, float(body_value))
    header = headers.get("Retry-After")
    if header is not None:
        # An HTTP-date is rare on these APIs; without a number our own backoff applies.
        with contextlib.suppress(ValueError):
            return max(0.0, float(header.strip()))
    return None


class Scrubber:
    """Replaces one secret URL (and anything `redact` knows) in text."""

    def __init__(self, url: str | None) -> None:
        self._secrets = [s for s in _secret_parts(url) if s]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return redact(text)


def _secret_parts(url: str | None) -> list[str]:
    """The URL itself and its last path segments: tokens live there."""
    if not url:
        return []
    path = url.split("?", 1)[0].rstrip("/")
    segments = [s for s in path.split("/")[3:] if len(s) >= 8]
    return sorted([url, *segments], key=len, reverse=True)


def error_for_status(
    destination: str,
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    gone: bool,
    retry_after_body: object = None,
    scrub: Scrubber,
) -> DeliveryError:
    """The delivery error for a non-2xx answer.

    429 and 5xx are retryable; `gone` marks the destination as no longer existing;
    any other 4xx rejects this alert for good.
    """
    text = scrub(body.strip()[:MAX_BODY_IN_ERROR])
    message = f"{destination}: HTTP {status}" + (f": {text}" if text else "")
    if status == 429 or status >= 500:
        return RetryableDeliveryError(
            message, retry_after=retry_after_from(headers, retry_after_body)
        )
    if gone:
        return DestinationGoneError(message)
    return RejectedDeliveryError(message)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message through a scrubber before any handler sees it.

    Third-party clients (slack_sdk) log their request URL, which carries the token.
    """

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._scrub(record.getMessage())
        record.args = None
        return True


def private_logger(name: str, scrub: Scrubber) -> logging.Logger:
    """A logger under `monitor.notifiers` whose records are scrubbed, for library clients."""
    logger = logging.getLogger(f"monitor.notifiers.lib.{name}")
    for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
        logger.removeFilter(old)
    logger.addFilter(RedactingFilter(scrub))
    logger.setLevel(logging.WARNING)
    return logger
