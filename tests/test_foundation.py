"""Durations, redaction, config validation and the alert's JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.config import default_config, parse_config
from monitor.core.durations import format_duration, parse_duration
from monitor.core.errors import ConfigError
from monitor.core.models import (
    Alert,
    PriceContext,
    Session,
    SourceRef,
    Stance,
    StanceLabel,
)
from monitor.core.redact import redact


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("30s", 30.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        (45, 45.0),
        ("90", 90.0),
        ("250ms", 0.25),
        (" 1h 5m ", 3900.0),
    ],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "", "1x", "-5s", True])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_duration_format() -> None:
    assert [format_duration(s) for s in (45, 300, 5400)] == ["45s", "5m", "1h30m"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("POST https://discord.com/api/webhooks/123456/AbC-def_ghi failed", "AbC-def_ghi"),
        ("url=https://discord.com/api/v10/webhooks/1/tok.en?wait=true", "tok.en"),
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "XXXXSECRET"),
        ("wss://ws.finnhub.io?token=sk_live_123", "sk_live_123"),
        ("postgresql://bob:hunter2@db/test", "hunter2"),
    ],
)
def test_redact_hides_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_config_defaults_match_design() -> None:
    cfg = default_config()
    assert cfg.store.url == "sqlite:///data/monitor.db"
    assert cfg.fetch.allow_private_networks is False
    assert cfg.prices.symbols == ["NVDA"] and cfg.prices.provider == "yahoo"
    assert cfg.rules.dir == "rules"
    assert [n.kind for n in cfg.notifiers] == ["console"]
    langs = {f.lang for f in cfg.feeds}
    assert langs == {"ko", "en"}
    assert all(f.timezone == "Asia/Seoul" for f in cfg.feeds if f.lang == "ko")


def test_config_design_example_loads() -> None:
    cfg = parse_config(
        """
[store]
url = "sqlite:///data/monitor.db"
[fetch]
allow_private_networks = false
[[feeds]]
name = "hankyung-economy"
url = "https://www.hankyung.com/feed/economy"
lang = "ko"
interval = "5m"
timezone = "Asia/Seoul"
[prices]
symbols = ["NVDA"]
provider = "yahoo"
yahoo_base_url = "https://query2.finance.yahoo.com"
interval = "30s"
[[notifiers]]
name = "trading-desk"
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"
[rules]
dir = "rules"
"""
    )
    assert cfg.feeds[0].interval == 300.0
    assert cfg.prices.interval == 30.0
    assert cfg.notifiers[0].resolve_url({"SLACK_WEBHOOK_URL": "https://x.test/h"}) == (
        "https://x.test/h"
    )


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[fetch]\nallow_private_network = true\n", "config.toml:2: fetch.allow_private_network"),
        ('[[feeds]]\nname = "a"\nurl = "ftp://x"\n', "config.toml:3: feeds.0.url"),
        ('[[feeds]]\nname = "a"\nurl = "http://x"\ninterval = "soon"\n', "feeds.0.interval"),
        ('[[feeds]]\nname = "a"\nurl = "http://x"\ntimezone = "Mars/Base"\n', "Mars/Base"),
        ('[[notifiers]]\nname = "d"\nkind = "discord"\n', "exactly one of url"),
        ('[store]\nurl = "mysql://x"\n', "store.url"),
        ("[prices\n", "config.toml"),
        ('[store]\nretention = "30m"\n', "longer than the longest prices.followups delay"),
    ],
)
def test_config_errors_name_key_and_line(toml: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(toml)
    assert needle in str(e.value)


def test_secret_url_is_masked_in_repr() -> None:
    cfg = parse_config(
        '[[notifiers]]\nname = "d"\nkind = "discord"\n'
        'url = "https://discord.com/api/webhooks/1/SECRET"\n'
    )
    assert "SECRET" not in repr(cfg)
    assert "SECRET" not in str(cfg.model_dump())


def test_missing_env_secret_is_a_config_error() -> None:
    cfg = parse_config('[[notifiers]]\nname = "s"\nkind = "slack"\nurl_env = "NOPE_URL"\n')
    with pytest.raises(ConfigError, match="NOPE_URL"):
        cfg.notifiers[0].resolve_url({})


def test_alert_round_trips_through_json() -> None:
    t = datetime(2025, 1, 27, 21, 0, tzinfo=UTC)
    alert = Alert(
        kind="news",
        key="story:1",
        title="엔비디아 17% 급락",
        created_at=t,
        published=t,
        lang="ko",
        rules=("deepseek-shock",),
        entities=("deepseek", "nvidia"),
        stance=(Stance("nvidia", StanceLabel.BEARISH, -0.6, 0.8, ("주가는 급락했다",)),),
        prices=(PriceContext("NVDA", 118.42, t, "yahoo", 142.62, -16.97, Session.POST),),
        urgency=("속보",),
        sources=(SourceRef("yna", "연합뉴스", "t", "https://l", "ko"),),
    )
    again = Alert.from_dict(json.loads(json.dumps(alert.to_dict(), ensure_ascii=False)))
    assert again == alert


def test_a_database_password_is_not_in_the_config_repr() -> None:
    cfg = parse_config('[store]\nurl = "postgresql://desk:hunter2@db/monitor"\n')
    assert "hunter2" not in repr(cfg)
    assert cfg.store.url.endswith("@db/monitor")
