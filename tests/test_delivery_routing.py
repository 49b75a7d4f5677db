"""Routing decisions: destinations, severity, quiet hours, cooldowns and digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.routing import (
    Cooldowns,
    Destination,
    Verdict,
    make_digest,
    parse_quiet_hours,
    plan_digest,
    route,
    targets,
)
from tests.fakes.alerts import T0, news_alert, rule

DESKS = [Destination("discord"), Destination("slack", min_severity="warning")]


@pytest.mark.parametrize(
    ("named", "expected"),
    [((), ["discord", "slack"]), (("slack",), ["slack"]), (("nowhere",), [])],
)
def test_a_rule_that_names_no_destination_goes_everywhere(named, expected) -> None:
    assert targets([rule(destinations=named)], ["discord", "slack"]) == expected


@pytest.mark.parametrize(
    ("severity", "discord", "slack"),
    [
        ("info", Verdict.SEND, Verdict.BELOW_SEVERITY),
        ("warning", Verdict.SEND, Verdict.SEND),
        ("critical", Verdict.SEND, Verdict.SEND),
    ],
)
def test_severity_floor(severity: str, discord: Verdict, slack: Verdict) -> None:
    got = route([rule(severity=severity)], ["nvidia"], DESKS, T0, Cooldowns())
    assert got == {"discord": discord, "slack": slack}


@pytest.mark.parametrize(
    ("utc_time", "severity", "verdict"),
    [
        ("14:30", "warning", Verdict.QUIET_HOURS),  # 23:30 KST
        ("21:59", "warning", Verdict.QUIET_HOURS),  # 06:59 KST
        ("22:00", "warning", Verdict.SEND),  # 07:00 KST
        ("12:59", "warning", Verdict.SEND),  # 21:59 KST
        ("14:30", "critical", Verdict.SEND),  # critical alerts pass quiet hours
    ],
)
def test_quiet_hours_wrap_past_midnight(utc_time: str, severity: str, verdict: Verdict) -> None:
    quiet = Destination("discord", quiet=parse_quiet_hours("22:00-07:00", "Asia/Seoul"))
    h, m = (int(x) for x in utc_time.split(":"))
    now = datetime(2025, 1, 27, h, m, tzinfo=UTC)
    assert route([rule(severity=severity)], ["nvidia"], [quiet], now, Cooldowns()) == {
        "discord": verdict
    }


@pytest.mark.parametrize("bad", ["22-07", "25:00-07:00", "22:00", ""])
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(bad)


def test_cooldown_holds_back_repeats_per_rule_and_entity() -> None:
    cd = Cooldowns()
    r = rule(cooldown_s=600)
    dest = [Destination("discord")]
    assert route([r], ["nvidia"], dest, T0, cd)["discord"] is Verdict.SEND
    later = T0 + timedelta(minutes=5)
    assert route([r], ["nvidia"], dest, later, cd)["discord"] is Verdict.COOLDOWN
    # a different entity under the same rule is news
    assert route([r], ["sk_hynix"], dest, later, cd)["discord"] is Verdict.SEND
    # a different rule on the same entity is news
    other = rule("export-controls", cooldown_s=600)
    assert route([other], ["nvidia"], dest, later, cd)["discord"] is Verdict.SEND
    # after the cooldown it goes out again
    assert route([r], ["nvidia"], dest, T0 + timedelta(minutes=11), cd)["discord"] is Verdict.SEND


def test_a_change_of_stance_breaks_the_cooldown() -> None:
    """DeepSeek day: the bearish take and the bullish reply both reach the desk."""
    cd = Cooldowns()
    r = rule(cooldown_s=1800)
    dest = [Destination("discord")]
    bearish, bullish = {"nvidia": "bearish"}, {"nvidia": "bullish"}
    assert route([r], ["nvidia"], dest, T0, cd, bearish)["discord"] is Verdict.SEND
    later = T0 + timedelta(minutes=10)
    assert route([r], ["nvidia"], dest, later, cd, bearish)["discord"] is Verdict.COOLDOWN
    assert route([r], ["nvidia"], dest, later, cd, bullish)["discord"] is Verdict.SEND
    assert route([r], ["nvidia"], dest, later, cd, bullish)["discord"] is Verdict.COOLDOWN


def test_no_cooldown_means_every_story_goes_out() -> None:
    cd = Cooldowns()
    for i in range(3):
        assert route([rule()], ["nvidia"], DESKS[:1], T0 + timedelta(seconds=i), cd) == {
            "discord": Verdict.SEND
        }


def test_a_burst_beyond_the_threshold_folds_into_one_digest() -> None:
    """50 stories over 10 s, seen one poll per second: 5 single sends, then one digest."""
    sends: list[float] = []
    waiting = 0
    oldest: float | None = None
    digests = 0
    for second in range(10):
        now = 100.0 + second
        waiting += 5
        oldest = now if oldest is None else oldest
        plan = plan_digest(
            sends, waiting, now, threshold=5, window_s=120, hold_s=10, oldest_waiting_since=oldest
        )
        sends += [now] * plan.single
        waiting -= plan.single
        if plan.fold and plan.hold_until is not None and now >= plan.hold_until:
            digests += 1
            waiting = 0
        if waiting == 0:
            oldest = None
    plan = plan_digest(sends, waiting, 110.0, 5, 120, 10, oldest_waiting_since=oldest)
    assert len(sends) == 5
    assert (
        plan.fold == 45 and plan.single == 0 and plan.hold_until == 111.0
    )  # 10 s after the first folded one
    assert digests == 0  # the digest waits for the burst, then goes out once


def test_within_the_threshold_every_alert_goes_out_alone() -> None:
    assert plan_digest([1.0, 2.0], 3, 10.0, 5, 120, 10).fold == 0
    assert plan_digest([1.0] * 5, 1, 200.0, 5, 120, 10).single == 1  # the window has passed


def test_digest_lists_its_members() -> None:
    children = [news_alert(i) for i in range(7)]
    digest = make_digest(children, "discord", T0 + timedelta(minutes=2))
    assert digest.kind == "digest" and len(digest.children) == 7
    assert digest.title == "Digest: 7 alerts in 2 min"
    assert digest.key == make_digest(list(reversed(children)), "discord", T0).key
