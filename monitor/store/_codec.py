"""Conversions between store records and column values, shared by both backends.

Timestamps must be timezone-aware; SQLite keeps them as integer microseconds
since the Unix epoch (exact, and ordered like the instants they stand for).
Alerts travel as the JSON of `Alert.to_dict`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.core.errors import StoreError
from monitor.core.models import Alert
from monitor.ports import NewOutboxEntry, OutboxEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def require_aware(value: datetime, what: str = "timestamp") -> datetime:
    """`value` in UTC; a naive datetime is refused because its instant is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def to_us(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (require_aware(value) - _EPOCH) // _US


def from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def from_us_required(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else require_aware(value)


def alert_to_json(alert: Alert) -> str:
    return dump_json(alert.to_dict())


def alert_from_json(text: str, row_id: int) -> Alert:
    try:
        return Alert.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise StoreError(f"outbox row {row_id} holds an alert that cannot be read: {e}") from e


def dump_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store as JSON: {e}") from e


def load_json(text: str | None, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except ValueError as e:
        raise StoreError(f"stored JSON cannot be read: {e}") from e


def claimed_rows(
    made: Sequence[tuple[NewOutboxEntry, int]], created: datetime
) -> list[OutboxEntry]:
    """The outbox rows a poll created as its owner's claim (`commit_poll_claimed`), as
    `claim_outbox` would read them back: `sending`, one attempt, due when created."""
    return [
        OutboxEntry(
            id=i,
            destination=a.destination,
            alert=a.alert,
            dedupe_key=a.dedupe_key,
            status="sending",
            attempts=1,
            created_at=created,
            next_attempt_at=created,
        )
        for a, i in made
    ]
