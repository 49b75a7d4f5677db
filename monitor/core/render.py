"""Text pieces every notifier shares: times in KST and ET, stance colours and
emoji, the price line, source lists and truncation that respects a limit.

Pure: the notifiers decide the layout for their platform; this module only
turns domain values into short strings and never measures time itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.core.models import Alert, PriceContext, Session, SourceRef, Stance, StanceLabel

KST = ZoneInfo("Asia/Seoul")
ET = ZoneInfo("America/New_York")
ELLIPSIS = "…"

STANCE_COLOURS: dict[StanceLabel, int] = {
    StanceLabel.BULLISH: 0x2ECC71,
    StanceLabel.BEARISH: 0xE74C3C,
    StanceLabel.MIXED: 0xF1C40F,
    StanceLabel.NEUTRAL: 0x95A5A6,
}
STANCE_EMOJI: dict[StanceLabel, str] = {
    StanceLabel.BULLISH: "🟢",
    StanceLabel.BEARISH: "🔴",
    StanceLabel.MIXED: "🟡",
    StanceLabel.NEUTRAL: "⚪",
}
# ANSI SGR colour numbers for the console.
STANCE_ANSI: dict[StanceLabel, str] = {
    StanceLabel.BULLISH: "32",
    StanceLabel.BEARISH: "31",
    StanceLabel.MIXED: "33",
    StanceLabel.NEUTRAL: "37",
}
SYSTEM_COLOUR = 0x5865F2
LANG_NAMES = {"ko": "Korean", "en": "English"}


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut.

    Cuts at the last space in the final fifth when there is one, so words stay whole.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit == 1:
        return ELLIPSIS
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= (limit * 4) // 5:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def truncate_lines(lines: Sequence[str], limit: int, sep: str = "\n") -> str:
    """Join whole lines while they fit in `limit`, then say how many were left out."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        cost = len(line) + (len(sep) if out else 0)
        rest = len(lines) - i
        more = f"{sep}{ELLIPSIS} +{rest} more"
        if used + cost + (len(more) if rest > 1 else 0) > limit:
            if out and used + len(more) <= limit:
                out.append(more.removeprefix(sep))
            elif not out:
                out.append(truncate(line, limit))
            break
        out.append(line)
        used += cost
    return sep.join(out)


def format_times(when: datetime | None) -> str:
    """'2025-01-27 23:30 KST · 01-27 09:30 ET', or '' when the time is unknown."""
    if when is None:
        return ""
    kst = when.astimezone(KST)
    et = when.astimezone(ET)
    return f"{kst:%Y-%m-%d %H:%M} KST · {et:%m-%d %H:%M} ET"


def urgency_tag(alert: Alert) -> str:
    """'[속보] [단독] ' style prefix for the alert's urgency flags."""
    return "".join(f"[{u}] " for u in alert.urgency)


def headline(alert: Alert) -> str:
    return urgency_tag(alert) + alert.title


def primary_stance(alert: Alert, prefer: str = "nvidia") -> Stance | None:
    """The stance shown first: the preferred target if judged, else the strongest."""
    for s in alert.stance:
        if s.target == prefer:
            return s
    if not alert.stance:
        return None
    return max(alert.stance, key=lambda s: abs(s.score))


def alert_colour(alert: Alert) -> int:
    if alert.kind in ("system", "digest"):
        return SYSTEM_COLOUR
    stance = primary_stance(alert)
    return STANCE_COLOURS[stance.label if stance else StanceLabel.NEUTRAL]


def stance_label(stance: Stance) -> str:
    """'🔴 nvidia: bearish (-0.62)'."""
    return (
        f"{STANCE_EMOJI[stance.label]} {stance.target}: {stance.label.value} ({stance.score:+.2f})"
    )


def stance_evidence(stance: Stance) -> str:
    """The deciding sentence, quoted, or '' when there is none."""
    return f"“{stance.evidence[0]}”" if stance.evidence else ""


def _pct(value: float) -> str:
    return f"{value:+.2f}%"


def price_line(price: PriceContext) -> str:
    """'NVDA $118.42 (-16.97% vs prev close) · since publish -3.10% · regular'."""
    parts = [f"{price.symbol} ${price.price:,.2f}"]
    if price.change_pct is not None:
        parts[0] += f" ({_pct(price.change_pct)} vs prev close)"
    if price.move_since_publish_pct is not None:
        parts.append(f"since publish {_pct(price.move_since_publish_pct)}")
    if price.move_since_alert_pct is not None:
        parts.append(f"since alert {_pct(price.move_since_alert_pct)}")
    parts.append(price.session.value if price.session is not Session.CLOSED else "market closed")
    if price.delay_s >= 60:
        parts.append(f"delayed {round(price.delay_s / 60)} min")
    return " · ".join(parts)


def source_line(ref: SourceRef) -> str:
    """'연합뉴스 (ko, yonhap-economy)' — the outlet, its language and the feed."""
    name = ref.source or ref.feed
    return (
        f"{name} ({ref.lang}, {ref.feed})"
        if ref.feed and ref.feed != name
        else f"{name} ({ref.lang})"
    )


def sources_of(alert: Alert) -> tuple[SourceRef, ...]:
    """Every outlet that carried the story; the alert's own source when none are listed."""
    if alert.sources:
        return alert.sources
    if alert.source or alert.link:
        return (
            SourceRef(
                feed="", source=alert.source, title=alert.title, link=alert.link, lang=alert.lang
            ),
        )
    return ()


def rule_line(alert: Alert) -> str:
    names = alert.rule_titles or alert.rules
    return ", ".join(names)


def entity_line(alert: Alert) -> str:
    return ", ".join(alert.entities)


def digest_line(child: Alert) -> str:
    """One line of a digest: stance emoji, urgency, title and outlet."""
    stance = primary_stance(child)
    emoji = STANCE_EMOJI[stance.label] if stance else STANCE_EMOJI[StanceLabel.NEUTRAL]
    outlet = f" — {child.source}" if child.source else ""
    return f"{emoji} {headline(child)}{outlet}"


def plain_text(alert: Alert, limit: int | None = None) -> str:
    """The whole alert as plain text lines: console output and text fallbacks."""
    lines: list[str] = [headline(alert)]
    if alert.kind == "digest":
        lines += [f"• {digest_line(c)}" for c in alert.children]
    else:
        meta = [
            p
            for p in (
                alert.source,
                LANG_NAMES.get(alert.lang, alert.lang),
                format_times(alert.published),
            )
            if p
        ]
        lines.append(" · ".join(meta))
        if alert.link:
            lines.append(alert.link)
        if alert.rules:
            lines.append(f"rule: {rule_line(alert)} · severity: {alert.severity}")
        if alert.entities:
            lines.append(f"entities: {entity_line(alert)}")
        for s in alert.stance:
            lines.append(stance_label(s) + (f" {stance_evidence(s)}" if s.evidence else ""))
        lines += [price_line(p) for p in alert.prices]
        refs = sources_of(alert)
        if len(refs) > 1:
            lines.append(f"sources ({len(refs)}): " + "; ".join(source_line(r) for r in refs))
        if alert.summary and alert.kind != "news":
            lines.append(alert.summary)
    text = "\n".join(lines)
    return truncate(text, limit) if limit is not None else text
