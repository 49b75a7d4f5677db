"""Rule evaluation, clause by clause: all / any / none over entities, terms and
regexes, min_mentions, langs, sources and stance, each with the reasons it gives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from monitor.core.engine import RuleSet, analyze, explain_rules
from monitor.core.models import Article, Stance, StanceLabel
from monitor.rulefiles import load_ruleset

ENTITIES = """\
[[entity]]
id = "nvidia"
stance_target = true
aliases.en = ["Nvidia"]
aliases.ko = ["엔비디아"]
tickers = ["NVDA"]

[[entity]]
id = "deepseek"
aliases.en = ["DeepSeek"]
aliases.ko = ["딥시크"]

[[entity]]
id = "tsmc"
aliases.en = ["TSMC"]
"""

RULES = """\
[[rule]]
id = "all-two"
title = "Both"
description = "Nvidia and DeepSeek together."
[rule.when]
all = ["nvidia", "deepseek"]

[[rule]]
id = "any-groups"
title = "Groups"
description = "One of each group."
[rule.when]
any = [["nvidia", "tsmc"], ["term:급락", "term:plunge"]]

[[rule]]
id = "none-term"
title = "Not a preview"
description = "Nvidia but not an event preview."
[rule.when]
all = ["nvidia"]
none = ["term:keynote", "deepseek"]

[[rule]]
id = "regex"
title = "Big move"
description = "Nvidia with a double-digit percentage."
[rule.when]
all = ["nvidia", 're:\\b\\d{2}(\\.\\d+)?%']

[[rule]]
id = "mentions"
title = "Mentioned often"
description = "Nvidia three times."
[rule.when]
all = ["nvidia"]
min_mentions = 3

[[rule]]
id = "mentions-each"
title = "Each mentioned"
description = "DeepSeek twice."
[rule.when]
any = ["deepseek"]
min_mentions = { deepseek = 2 }

[[rule]]
id = "korean-only"
title = "Korean"
description = "Korean Nvidia stories."
[rule.when]
all = ["nvidia"]
langs = ["ko"]

[[rule]]
id = "from-reuters"
title = "Reuters"
description = "Nvidia stories from Reuters."
[rule.when]
all = ["nvidia"]
sources = ["Reuters"]

[[rule]]
id = "bearish"
title = "Bearish"
description = "Bearish or mixed for Nvidia."
severity = "critical"
destinations = ["desk"]
cooldown = "15m"
[rule.when]
all = ["nvidia"]
stance = { nvidia = ["bearish", "mixed"] }
"""


@pytest.fixture(scope="module")
def rs(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    d: Path = tmp_path_factory.mktemp("rules")
    (d / "entities.toml").write_text(ENTITIES, encoding="utf-8")
    (d / "rules.toml").write_text(RULES, encoding="utf-8")
    return load_ruleset(d)


def art(title: str, body: str = "", lang: str = "en", source: str = "") -> Article:
    return Article(feed="f", item_id="1", title=title, body=body, lang=lang, source=source)  # type: ignore[arg-type]


# (rule id, article, fires?)
CASES = [
    ("all-two", art("Nvidia falls as DeepSeek rises"), True),
    ("all-two", art("Nvidia falls"), False),
    ("any-groups", art("TSMC shares plunge"), True),
    ("any-groups", art("엔비디아 주가 급락"), True),
    ("any-groups", art("TSMC shares rise"), False),
    ("any-groups", art("Shares plunge"), False),
    ("none-term", art("Nvidia raises forecast"), True),
    ("none-term", art("Nvidia keynote set for June"), False),
    ("none-term", art("Nvidia and DeepSeek"), False),
    ("regex", art("Nvidia jumps 16.4%"), True),
    ("regex", art("Nvidia slips 3%"), False),
    ("mentions", art("Nvidia", "Nvidia (NVDA) rose."), True),
    ("mentions", art("Nvidia", "Nvidia rose."), False),
    ("mentions-each", art("DeepSeek", "딥시크 모델"), True),
    ("mentions-each", art("DeepSeek model"), False),
    ("korean-only", art("엔비디아 급등", lang="ko"), True),
    ("korean-only", art("Nvidia jumps"), False),
    ("from-reuters", art("Nvidia jumps", source="Reuters"), True),
    ("from-reuters", art("Nvidia jumps", source="reuters"), True),
    ("from-reuters", art("Nvidia jumps", source="Bloomberg"), False),
]


@pytest.mark.parametrize(("rule_id", "article", "fires"), CASES)
def test_clause(rs: RuleSet, rule_id: str, article: Article, fires: bool) -> None:
    verdict = next(v for v in explain_rules(rs, analyze(rs, article)) if v.rule.id == rule_id)
    assert verdict.matched is fires, verdict.reasons
    fired = {m.rule_id for m in analyze(rs, article).rules}
    assert (rule_id in fired) is fires  # the indexed path agrees with the full one


def reasons(rs: RuleSet, rule_id: str, article: Article) -> tuple[str, ...]:
    return next(v for v in explain_rules(rs, analyze(rs, article)) if v.rule.id == rule_id).reasons


REASONS = [
    (
        "all-two",
        art("Nvidia falls as DeepSeek rises", "Nvidia again."),
        (
            'all: nvidia: "Nvidia" at title 0-6 (+1 more)',
            'all: deepseek: "DeepSeek" at title 16-24',
        ),
    ),
    (
        "all-two",
        art("Nvidia falls"),
        ('all: nvidia: "Nvidia" at title 0-6', "all: deepseek not found"),
    ),
    (
        "any-groups",
        art("엔비디아 주가 급락"),
        ('any: nvidia: "엔비디아" at title 0-4', "any: term:급락: at title 8-10"),
    ),
    (
        "none-term",
        art("Nvidia keynote"),
        ('all: nvidia: "Nvidia" at title 0-6', "none: term:keynote: at title 7-14"),
    ),
    (
        "regex",
        art("Nvidia jumps 16.4%"),
        (
            'all: nvidia: "Nvidia" at title 0-6',
            'all: re:\\b\\d{2}(\\.\\d+)?%: "16.4%" at title 13-18',
        ),
    ),
    ("mentions", art("Nvidia"), ('all: nvidia: "Nvidia" at title 0-6', "min_mentions: 1 < 3")),
    ("korean-only", art("Nvidia"), ("langs: en not in ['ko']",)),
    ("from-reuters", art("Nvidia", source="AP"), ("sources: AP not listed",)),
]


@pytest.mark.parametrize(("rule_id", "article", "expected"), REASONS)
def test_reasons(rs: RuleSet, rule_id: str, article: Article, expected: tuple[str, ...]) -> None:
    assert reasons(rs, rule_id, article) == expected


def test_stance_clause_and_rule_match_fields(rs: RuleSet) -> None:
    a = analyze(rs, art("Nvidia shares"))
    for label, fires in [
        (StanceLabel.BEARISH, True),
        (StanceLabel.MIXED, True),
        (StanceLabel.BULLISH, False),
    ]:
        with_stance = replace(a, stance={"nvidia": Stance("nvidia", label, -0.5)})
        v = next(v for v in explain_rules(rs, with_stance) if v.rule.id == "bearish")
        assert v.matched is fires
    v = next(
        v
        for v in explain_rules(
            rs, replace(a, stance={"nvidia": Stance("nvidia", StanceLabel.BEARISH, -0.5)})
        )
        if v.rule.id == "bearish"
    )
    m = v.to_match()
    assert (m.rule_id, m.title, m.severity, m.destinations, m.cooldown_s) == (
        "bearish",
        "Bearish",
        "critical",
        ("desk",),
        900.0,
    )
    assert m.reasons[-1] == "stance: nvidia bearish (-0.50)"


def test_an_article_without_entities_fires_nothing_and_has_no_stance(rs: RuleSet) -> None:
    a = analyze(rs, art("Coffee prices rise", "Growers expect a good harvest."))
    assert (a.entities, a.rules, a.stance, a.hits) == ((), (), {}, ())
