"""Routing: which destinations get an alert, and when a burst becomes a digest.

Decides, never acts. A rule that names no destination goes to every notifier;
each destination has a severity floor and optional quiet hours (only critical
alerts pass then); a rule's cooldown holds back an alert that brings no new
(rule, entity, stance) to a destination within the cooldown; and more than
`digest_threshold` alerts within `digest_window_s` for one destination fold
into a single digest alert. Time is always an argument.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from monitor.core.models import Alert, RuleMatch

SEVERITIES = ("info", "notice", "warning", "critical")


def severity_rank(severity: str) -> int:
    """Position in SEVERITIES; an unknown name counts as info."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def highest_severity(rules: Iterable[RuleMatch]) -> str:
    return max((r.severity for r in rules), key=severity_rank, default="info")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span in a time zone; it may wrap past midnight (22:00-07:00)."""

    start: time
    end: time
    tz: str = "Asia/Seoul"

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.tz)).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(text: str, tz: str = "Asia/Seoul") -> QuietHours:
    """'22:00-07:00' -> QuietHours; ValueError naming the text when malformed."""
    m = _SPAN.match(text)
    if not m:
        raise ValueError(f"quiet hours must look like '22:00-07:00', not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"quiet hours out of range: {text!r}")
    ZoneInfo(tz)  # an unknown zone fails here, at load time
    return QuietHours(time(h1, m1), time(h2, m2), tz)


@dataclass(frozen=True, slots=True)
class Destination:
    """What routing needs to know about one notifier."""

    name: str
    min_severity: str = "info"
    quiet: QuietHours | None = None
    digest_threshold: int = 5
    digest_window_s: float = 120.0


class Verdict(StrEnum):
    SEND = "send"
    NOT_ADDRESSED = "not_addressed"
    BELOW_SEVERITY = "below_severity"
    QUIET_HOURS = "quiet_hours"
    COOLDOWN = "cooldown"


def targets(rules: Sequence[RuleMatch], destinations: Sequence[str]) -> list[str]:
    """Destinations named by the rules (in config order); all of them when none is named."""
    named = {d for r in rules for d in r.destinations}
    if not named:
        return list(destinations)
    return [d for d in destinations if d in named]


@dataclass(slots=True)
class Cooldowns:
    """When each (destination, rule, entity) last went out, and with which stance.

    Plain state, no clock. A pair is new again once its rule's cooldown has
    passed or when the entity's stance label changed: on a day of debate the
    bearish take and the bullish reply both go out.
    """

    last: dict[tuple[str, str, str], tuple[datetime, str]] = field(default_factory=dict)

    def cooling(
        self,
        destination: str,
        rules: Sequence[RuleMatch],
        entities: Sequence[str],
        now: datetime,
        stances: Mapping[str, str] | None = None,
    ) -> bool:
        """True when every (rule, entity) pair of the alert went out within its rule's
        cooldown with the same stance label."""
        if not rules or any(r.cooldown_s <= 0 for r in rules):
            return False
        labels = stances or {}
        for rule in rules:
            for entity in entities or ("",):
                seen = self.last.get((destination, rule.rule_id, entity))
                if seen is None or now - seen[0] >= timedelta(seconds=rule.cooldown_s):
                    return False
                if seen[1] != labels.get(entity, ""):
                    return False
        return True

    def record(
        self,
        destination: str,
        rules: Sequence[RuleMatch],
        entities: Sequence[str],
        now: datetime,
        stances: Mapping[str, str] | None = None,
    ) -> None:
        labels = stances or {}
        for rule in rules:
            for entity in entities or ("",):
                self.last[(destination, rule.rule_id, entity)] = (now, labels.get(entity, ""))

    def forget_before(self, before: datetime) -> None:
        self.last = {k: v for k, v in self.last.items() if v[0] >= before}


def gate(destination: Destination, severity: str, now: datetime) -> Verdict:
    """The severity floor and quiet hours; for every alert, news or not."""
    if severity_rank(severity) < severity_rank(destination.min_severity):
        return Verdict.BELOW_SEVERITY
    if destination.quiet is not None and severity != "critical" and destination.quiet.contains(now):
        return Verdict.QUIET_HOURS
    return Verdict.SEND


def decide(
    destination: Destination,
    rules: Sequence[RuleMatch],
    entities: Sequence[str],
    now: datetime,
    cooldowns: Cooldowns,
    stances: Mapping[str, str] | None = None,
) -> Verdict:
    """Whether an alert matched by `rules` goes to `destination` now.

    `stances` maps entity -> stance label of the alert, for the cooldown.
    """
    verdict = gate(destination, highest_severity(rules), now)
    if verdict is not Verdict.SEND:
        return verdict
    if cooldowns.cooling(destination.name, rules, entities, now, stances):
        return Verdict.COOLDOWN
    return Verdict.SEND


def route(
    rules: Sequence[RuleMatch],
    entities: Sequence[str],
    destinations: Sequence[Destination],
    now: datetime,
    cooldowns: Cooldowns,
    stances: Mapping[str, str] | None = None,
) -> dict[str, Verdict]:
    """The verdict for every destination; records the sends in `cooldowns`."""
    addressed = set(targets(rules, [d.name for d in destinations]))
    out: dict[str, Verdict] = {}
    for dest in destinations:
        if dest.name not in addressed:
            out[dest.name] = Verdict.NOT_ADDRESSED
            continue
        verdict = decide(dest, rules, entities, now, cooldowns, stances)
        if verdict is Verdict.SEND:
            cooldowns.record(dest.name, rules, entities, now, stances)
        out[dest.name] = verdict
    return out


# --------------------------------------------------------------------------- digests


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """How to deliver the alerts waiting for one destination."""

    single: int  # send this many of the oldest one by one
    fold: int  # fold the next this many into one digest
    hold_until: float | None = None  # when folding: wait for more until then (monotonic)


def plan_digest(
    recent_sends: Sequence[float],
    waiting: int,
    now: float,
    threshold: int,
    window_s: float,
    hold_s: float,
    oldest_waiting_since: float | None = None,
) -> DigestPlan:
    """Decide between single sends and a digest for `waiting` alerts.

    `recent_sends` are the (monotonic) times alerts went out to the destination.
    Up to `threshold` alerts per `window_s` go out one by one; beyond that the
    rest fold into one digest, held for `hold_s` after the oldest waiting alert
    so the rest of the burst lands in the same digest.
    """
    sent = sum(1 for t in recent_sends if now - t < window_s)
    room = max(0, threshold - sent)
    if waiting <= room:
        return DigestPlan(single=waiting, fold=0)
    single = room
    fold = waiting - single
    since = now if oldest_waiting_since is None else oldest_waiting_since
    return DigestPlan(single=single, fold=fold, hold_until=since + hold_s)


def make_digest(children: Sequence[Alert], destination: str, now: datetime) -> Alert:
    """One alert that carries `children`, keyed by destination and members."""
    keys = sorted(c.key for c in children)
    first = min((c.created_at for c in children), default=now)
    severity = max((c.severity for c in children), key=severity_rank, default="info")
    entities = sorted({e for c in children for e in c.entities})
    digest = hashlib.sha256("|".join(keys).encode("utf-8")).hexdigest()[:16]
    minutes = max(1, round((now - first).total_seconds() / 60))
    return Alert(
        kind="digest",
        key=f"digest:{destination}:{digest}",
        title=f"Digest: {len(children)} alerts in {minutes} min",
        created_at=now,
        severity=severity,
        entities=tuple(entities),
        children=tuple(children),
    )


def by_name(destinations: Iterable[Destination]) -> Mapping[str, Destination]:
    return {d.name: d for d in destinations}
