"""Builders for alerts and analyses as the delivery tests need them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.core.models import (
    Alert,
    Analysis,
    Article,
    PriceContext,
    RuleMatch,
    Session,
    SourceRef,
    Stance,
    StanceLabel,
)

T0 = datetime(2025, 1, 27, 14, 30, tzinfo=UTC)


def nvda(change: float = -16.97) -> PriceContext:
    return PriceContext(
        symbol="NVDA",
        price=118.42,
        as_of=T0,
        provider="yahoo",
        previous_close=142.62,
        change_pct=change,
        session=Session.REGULAR,
        price_at_publish=122.0,
        move_since_publish_pct=-2.93,
    )


def bearish_nvidia() -> Stance:
    return Stance(
        target="nvidia",
        label=StanceLabel.BEARISH,
        score=-0.62,
        confidence=0.8,
        evidence=("엔비디아 주가는 16.97% 급락했다",),
    )


def news_alert(n: int = 0, **over: Any) -> Alert:
    fields: dict[str, Any] = {
        "kind": "news",
        "key": f"story:{n:04d}",
        "title": f"딥시크 충격에 엔비디아 주가 급락 {n}",
        "created_at": T0 + timedelta(seconds=n),
        "link": f"https://www.yna.co.kr/view/AKR2025012700{n:04d}",
        "lang": "ko",
        "source": "연합뉴스",
        "published": T0 - timedelta(minutes=3),
        "severity": "warning",
        "rules": ("deepseek-shock",),
        "rule_titles": ("DeepSeek shock",),
        "entities": ("deepseek", "nvidia"),
        "stance": (bearish_nvidia(),),
        "prices": (nvda(),),
        "urgency": ("속보",),
        "sources": (
            SourceRef(
                feed="yonhap-economy",
                source="연합뉴스",
                title="[속보] 딥시크 충격",
                link=f"https://www.yna.co.kr/view/AKR2025012700{n:04d}",
                lang="ko",
            ),
        ),
    }
    fields.update(over)
    return Alert(**fields)


def article(
    feed: str,
    title: str,
    *,
    item: str | None = None,
    lang: str = "ko",
    source: str = "",
    seen: datetime = T0,
    link: str | None = None,
) -> Article:
    return Article(
        feed=feed,
        item_id=item or f"{feed}:{title}",
        title=title,
        link=link if link is not None else f"https://example.com/{feed}/{abs(hash(title))}",
        lang=lang,
        published=seen - timedelta(minutes=1),
        source=source or feed,
        urgency=tuple(u for u in ("속보", "단독") if f"[{u}]" in title),
        seen_at=seen,
    )


def rule(
    rule_id: str = "deepseek-shock",
    *,
    severity: str = "warning",
    destinations: tuple[str, ...] = (),
    cooldown_s: float = 0.0,
) -> RuleMatch:
    return RuleMatch(
        rule_id=rule_id,
        title=rule_id.replace("-", " ").title(),
        severity=severity,
        destinations=destinations,
        cooldown_s=cooldown_s,
        reasons=("test",),
    )


def analysis(
    art: Article,
    *rules: RuleMatch,
    entities: tuple[str, ...] = ("deepseek", "nvidia"),
    stance: tuple[Stance, ...] = (),
) -> Analysis:
    return Analysis(
        article=art,
        entities=entities,
        rules=rules or (rule(),),
        stance={s.target: s for s in stance},
    )
