"""The configuration tree: `config.toml` read into typed, validated models.

Contains no business logic. Every key is checked: unknown keys and bad values
raise `ConfigError` naming the key and, where the file says, its line. Secrets
(notifier URLs, API keys) come from the environment or a file and are masked in
`repr`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.core.durations import parse_duration
from monitor.core.errors import ConfigError
from monitor.core.redact import redact


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


Duration = Annotated[float, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Model):
    url: str = Field(default="sqlite:///data/monitor.db", repr=False)  # may hold a password
    instance_id: str | None = None  # defaults to host:pid; names leases in PostgreSQL
    lease: Duration = 120.0
    retention: Duration = 30 * 86400.0

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return v


class FetchConfig(_Model):
    allow_private_networks: bool = False
    user_agent: str = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0 Safari/537.36 semis-monitor/0.1"
    )
    connect_timeout: Duration = 10.0
    read_timeout: Duration = 20.0
    total_timeout: Duration = 30.0
    max_body_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=10)
    concurrency: int = Field(default=16, ge=1)
    per_host_concurrency: int = Field(default=2, ge=1)
    min_interval: Duration = 60.0
    max_interval: Duration = 3600.0
    max_backoff: Duration = 6 * 3600.0
    max_retry_after: Duration = 6 * 3600.0
    parse_timeout: Duration = 10.0


class FeedConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    url: str
    lang: Literal["ko", "en"] = "en"
    interval: Duration = 300.0
    timezone: str = "UTC"
    source: str | None = None  # outlet name shown on alerts; defaults to the feed title
    backfill: bool = False
    adaptive: bool = True
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class MoveThreshold(_Model):
    window: Duration
    pct: float = Field(gt=0)


class PricesConfig(_Model):
    enabled: bool = True
    symbols: list[str] = Field(default_factory=lambda: ["NVDA"])
    provider: Literal["yahoo", "finnhub"] = "yahoo"
    yahoo_base_url: str = "https://query2.finance.yahoo.com"
    finnhub_url: str = "wss://ws.finnhub.io"
    finnhub_token_env: str = "FINNHUB_TOKEN"
    interval: Duration = 30.0
    stale_after: Duration = 180.0
    move_vs_previous_close_pct: list[float] = Field(default_factory=lambda: [3.0, 5.0, 10.0])
    move_windows: list[MoveThreshold] = Field(
        default_factory=lambda: [
            MoveThreshold(window=600.0, pct=2.0),
            MoveThreshold(window=1800.0, pct=3.0),
        ]
    )
    move_cooldown: Duration = 1800.0
    move_sessions: list[Literal["pre", "regular", "post"]] = Field(
        default_factory=lambda: ["pre", "regular", "post"]  # type: ignore[arg-type]
    )
    followups: list[Duration] = Field(default_factory=lambda: [900.0, 3600.0])
    explain_window: Duration = 900.0  # a move within this of matching stories merges
    move_session_windows: dict[Literal["pre", "regular", "post"], list[MoveThreshold]] = Field(
        default_factory=dict  # per-session replacements for move_windows
    )
    move_hysteresis: float = Field(default=0.5, gt=0, lt=1)  # re-arm below (1 - this) x threshold
    finnhub_watchdog: Duration = 60.0  # a socket silent this long is dropped and reconnected


class NotifierConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    kind: Literal["discord", "slack", "webhook", "console"]
    url: SecretStr | None = None
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None  # HMAC key for kind = "webhook"
    color: bool | None = None  # console: None means "if a terminal"
    min_severity: Literal["info", "notice", "warning", "critical"] = "info"
    quiet_hours: str | None = None  # "22:00-07:00" in quiet_timezone
    quiet_timezone: str = "Asia/Seoul"
    digest_threshold: int = Field(default=5, ge=1)  # more than this many ...
    digest_window: Duration = 120.0  # ... within this window become one digest
    chart: bool = True

    @model_validator(mode="after")
    def _one_url(self) -> NotifierConfig:
        given = [k for k in ("url", "url_env", "url_file") if getattr(self, k) is not None]
        if self.kind == "console":
            if given:
                raise ValueError("a console notifier takes no url")
        elif len(given) != 1:
            raise ValueError(f"a {self.kind} notifier needs exactly one of url, url_env, url_file")
        return self

    def resolve_url(self, environ: dict[str, str] | None = None) -> str | None:
        """The destination URL from `url`, `url_env` or `url_file`; ConfigError if absent."""
        env = os.environ if environ is None else environ
        if self.url is not None:
            return self.url.get_secret_value()
        if self.url_env is not None:
            value = env.get(self.url_env, "").strip()
            if not value:
                raise ConfigError(
                    f"notifiers.{self.name}: environment variable {self.url_env} is not set"
                )
            return value
        if self.url_file is not None:
            try:
                value = Path(self.url_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(
                    f"notifiers.{self.name}: cannot read url_file {self.url_file}: {e.strerror}"
                ) from e
            if not value:
                raise ConfigError(f"notifiers.{self.name}: url_file {self.url_file} is empty")
            return value
        return None


class RulesConfig(_Model):
    dir: str = "rules"
    watch: bool = True
    stance_targets: list[str] | None = None  # None: the entities marked stance_target
    bullish_threshold: float = Field(default=0.2, gt=0, le=1)
    bearish_threshold: float = Field(default=-0.2, ge=-1, lt=0)
    mixed_min_each: float = Field(default=0.25, gt=0, le=1)


class HealthConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)


class DispatchConfig(_Model):
    grace: Duration = 10.0  # on SIGTERM: drain the outbox for at most this long
    max_attempts: int = Field(default=0, ge=0)  # 0: retry forever (with backoff)
    max_backoff: Duration = 900.0
    story_window: Duration = 36 * 3600.0  # rewrites within this window are one story


class Config(_Model):
    store: StoreConfig = Field(default_factory=StoreConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    feeds: list[FeedConfig] = Field(default_factory=list)
    prices: PricesConfig = Field(default_factory=PricesConfig)
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for what, names in (
            ("feeds", [f.name for f in self.feeds]),
            ("notifiers", [n.name for n in self.notifiers]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate name(s) {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _followups_outlive_nothing_they_need(self) -> Config:
        # A follow-up reads its alert back from the sent outbox row, which `prune`
        # deletes after store.retention.
        longest = max(self.prices.followups, default=0.0)
        if self.prices.enabled and longest >= self.store.retention:
            raise ValueError(
                f"store.retention ({self.store.retention:g}s) must be longer than the longest "
                f"prices.followups delay ({longest:g}s): follow-ups read their alert from the "
                "store until then"
            )
        return self


def _locate(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort 1-based line of a dotted key path in TOML source."""
    lines = text.splitlines()
    start = 0
    keys = [k for k in loc if isinstance(k, str)]
    indexes = [k for k in loc if isinstance(k, int)]
    if keys:
        table = keys[0]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*$")
        found = [i for i, line in enumerate(lines) if header.match(line)]
        if found:
            idx = indexes[0] if indexes and indexes[0] < len(found) else 0
            start = found[idx]
            if len(keys) == 1:
                return start + 1
    if keys:
        key = re.compile(rf"^\s*{re.escape(keys[-1])}\s*=")
        for i in range(start, len(lines)):
            if key.match(lines[i]):
                return i + 1
    return None


def parse_config(text: str, path: str = "config.toml") -> Config:
    """Validate TOML text into a Config; ConfigError lists every problem with its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from e
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc) or "(top level)"
            line = _locate(text, loc)
            where = f"{path}:{line}" if line else path
            problems.append(f"{where}: {key}: {redact(err['msg'])}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from e


def load_config(path: str | Path | None) -> Config:
    """Read `path`; None means the embedded defaults (see `default_config`)."""
    if path is None:
        return default_config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from e
    return parse_config(text, str(p))


def _gnews(query: str, lang: Literal["ko", "en"]) -> str:
    from urllib.parse import quote

    if lang == "ko":
        return f"https://news.google.com/rss/search?q={quote(query)}&hl=ko&gl=KR&ceid=KR:ko"
    return f"https://news.google.com/rss/search?q={quote(query)}&hl=en-US&gl=US&ceid=US:en"


def default_feeds() -> list[FeedConfig]:
    """Real Korean and English feeds for a semiconductor desk."""
    seoul = "Asia/Seoul"
    ko: list[tuple[str, str, str]] = [
        ("hankyung-economy", "https://www.hankyung.com/feed/economy", "한국경제"),
        ("hankyung-finance", "https://www.hankyung.com/feed/finance", "한국경제"),
        ("hankyung-it", "https://www.hankyung.com/feed/it", "한국경제"),
        ("hankyung-international", "https://www.hankyung.com/feed/international", "한국경제"),
        ("mk-economy", "https://www.mk.co.kr/rss/30100041/", "매일경제"),
        ("mk-stock", "https://www.mk.co.kr/rss/50200011/", "매일경제"),
        ("mk-it", "https://www.mk.co.kr/rss/50300009/", "매일경제"),
        ("yonhap-economy", "https://www.yna.co.kr/rss/economy.xml", "연합뉴스"),
        ("yonhap-market", "https://www.yna.co.kr/rss/market.xml", "연합뉴스"),
        ("gnews-ko-nvidia", _gnews("엔비디아", "ko"), "Google 뉴스"),
        ("gnews-ko-deepseek", _gnews("딥시크", "ko"), "Google 뉴스"),
        ("gnews-ko-semis", _gnews("반도체 HBM", "ko"), "Google 뉴스"),
    ]
    en: list[tuple[str, str, str]] = [
        ("gnews-en-nvidia", _gnews("Nvidia stock", "en"), "Google News"),
        ("gnews-en-export", _gnews("Nvidia export controls China", "en"), "Google News"),
        ("gnews-en-hbm", _gnews("HBM SK hynix Samsung TSMC", "en"), "Google News"),
        ("nvidia-newsroom", "https://nvidianews.nvidia.com/releases.xml", "NVIDIA Newsroom"),
        (
            "sec-nvda",
            "https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK=0001045810"
            "&type=&dateb=&owner=include&count=40&output=atom",
            "SEC EDGAR",
        ),
        (
            "cnbc-technology",
            "https://search.cnbc.com/rs/search/combinedcms/view.xml?partnerId=wrss01&id=19854910",
            "CNBC",
        ),
    ]
    feeds = [
        FeedConfig(name=n, url=u, lang="ko", timezone=seoul, source=s, interval=300.0)
        for n, u, s in ko
    ]
    feeds += [
        FeedConfig(name=n, url=u, lang="en", timezone="America/New_York", source=s, interval=300.0)
        for n, u, s in en
    ]
    return feeds


def default_config() -> Config:
    """What `monitor run` uses without a config file: SQLite under ./data, bundled
    rules, the default feeds, Yahoo prices, a console notifier."""
    return Config(
        feeds=default_feeds(),
        notifiers=[NotifierConfig(name="console", kind="console")],
    )
