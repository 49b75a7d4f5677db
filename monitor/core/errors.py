"""The project's one error tree.

Every error raised on purpose derives from `MonitorError` and also from the
builtin it resembles, so callers may catch either.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error semis-monitor raises on purpose."""


class ConfigError(MonitorError, ValueError):
    """The configuration file or a value in it is invalid."""


class RuleError(ConfigError):
    """A rule or lexicon file is invalid.

    Carries where: `path`, `line` (1-based, when known), `rule` (rule or entity
    id, when known) and `field` (dotted path inside the rule, when known).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.rule = rule
        self.field = field
        super().__init__(self.location() + message)

    def location(self) -> str:
        parts: list[str] = []
        if self.path:
            parts.append(self.path if self.line is None else f"{self.path}:{self.line}")
        if self.rule:
            parts.append(f"rule {self.rule!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return (": ".join(parts) + ": ") if parts else ""


class FetchError(MonitorError, OSError):
    """A feed or price endpoint could not be fetched."""


class BlockedAddressError(FetchError):
    """The target resolves to an address that the SSRF guard refuses."""


class FeedParseError(MonitorError, ValueError):
    """A fetched body could not be parsed as a feed."""


class StoreError(MonitorError, RuntimeError):
    """The state store failed or holds data it cannot read."""


class PriceError(MonitorError, RuntimeError):
    """A price source answered with an error or with data it cannot use."""


class DeliveryError(MonitorError, RuntimeError):
    """An alert could not be delivered to a destination."""


class RetryableDeliveryError(DeliveryError):
    """Try again later: 429, 5xx, a timeout or a dropped connection.

    `retry_after` is the number of seconds the destination asked for, if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedDeliveryError(DeliveryError):
    """The destination refused this alert for good (a 4xx other than 429)."""


class DestinationGoneError(RejectedDeliveryError):
    """The destination no longer exists (Discord 404 / 10015, Slack 404 / 410)."""
