"""assess(): evidence, score range, configurable thresholds, hit offsets, shared work."""

from __future__ import annotations

import pytest

from monitor.core.models import Article, Hit, StanceLabel
from monitor.core.stance import Lexicon, StanceThresholds, assess, assess_all, assess_detailed
from tests.fakes.entity_hits import find_hits
from tests.test_stance_cases import load_bundled_lexicon

BEARISH_BODY = (
    "The company scheduled its annual meeting for June. "
    "Nvidia shares plunged 9% on Tuesday after the export rule was announced. "
    "Its board has eleven members."
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_bundled_lexicon()


def en(title: str, body: str = "") -> Article:
    return Article(feed="t", item_id="1", title=title, body=body, lang="en")


def test_evidence_is_the_sentence_that_decided(lexicon: Lexicon) -> None:
    a = en("Nvidia in focus", BEARISH_BODY)
    got = assess(a, "nvidia", find_hits(a), lexicon)
    assert got.label == StanceLabel.BEARISH
    assert got.evidence == (
        "Nvidia shares plunged 9% on Tuesday after the export rule was announced.",
    )
    assert -1.0 <= got.score < 0 and 0 < got.confidence <= 1


def test_neutral_evidence_names_the_target(lexicon: Lexicon) -> None:
    a = en("Nvidia appoints a new director", "The board now has twelve members.")
    got = assess(a, "nvidia", find_hits(a), lexicon)
    assert got.label == StanceLabel.NEUTRAL
    assert got.evidence == ("Nvidia appoints a new director",)


def test_thresholds_are_configurable(lexicon: Lexicon) -> None:
    a = en("Analysts expect Nvidia orders to grow")
    hits = find_hits(a)
    default = assess(a, "nvidia", hits, lexicon)
    assert default.label == StanceLabel.BULLISH
    strict = StanceThresholds(bullish=0.95, bearish=-0.95)
    assert assess(a, "nvidia", hits, lexicon, strict).label == StanceLabel.NEUTRAL


def test_mixed_needs_each_side_per_threshold(lexicon: Lexicon) -> None:
    a = en(
        "Nvidia's record quarter meets China worries",
        "Nvidia's revenue topped estimates. But it warned that export curbs would cost it "
        "sales in China. Analysts were divided.",
    )
    hits = find_hits(a)
    assert assess(a, "nvidia", hits, lexicon).label == StanceLabel.MIXED
    one_sided = StanceThresholds(mixed_min_each=0.9)
    assert assess(a, "nvidia", hits, lexicon, one_sided).label != StanceLabel.MIXED


def test_hits_with_stale_offsets_fall_back_to_the_alias(lexicon: Lexicon) -> None:
    a = en("Shares of chipmakers fell; Nvidia shares plunged 12%")
    stale = [Hit("nvidia", "Nvidia", "title", 500, 506)]
    fresh = find_hits(a)
    assert assess(a, "nvidia", stale, lexicon) == assess(a, "nvidia", fresh, lexicon)


def test_each_target_is_judged_on_its_own_mentions(lexicon: Lexicon) -> None:
    a = en(
        "SK hynix slumps 6% while Nvidia climbs 4%",
        "SK hynix shares fell 6% on Friday. Nvidia shares rose 4% to a record.",
    )
    hits = find_hits(a)
    assert assess(a, "sk_hynix", hits, lexicon).label == StanceLabel.BEARISH
    assert assess(a, "nvidia", hits, lexicon).label == StanceLabel.BULLISH
    # judged together (one shared analysis), each target gets the same answer
    together = assess_all(a, ["nvidia", "sk_hynix", "tsmc"], hits, lexicon)
    assert together["nvidia"] == assess(a, "nvidia", hits, lexicon)
    assert together["sk_hynix"] == assess(a, "sk_hynix", hits, lexicon)
    assert together["tsmc"].label == StanceLabel.NEUTRAL  # not named: no evidence


def test_negated_cues_are_reported_as_such(lexicon: Lexicon) -> None:
    a = en("Nvidia shares did not fall")
    report = assess_detailed(a, "nvidia", find_hits(a), lexicon)
    assert [c.negated for c in report.cues] == [True]
    assert report.stance.label == StanceLabel.BULLISH


def test_article_in_a_language_without_a_lexicon_uses_another(lexicon: Lexicon) -> None:
    only_en = Lexicon(languages={"en": lexicon.languages["en"]}, weights=lexicon.weights)
    a = Article(feed="t", item_id="1", title="Nvidia shares plunge 10%", lang="ko")
    assert assess(a, "nvidia", find_hits(a), only_en).label == StanceLabel.BEARISH


def test_the_engine_hands_its_matches_over_and_gets_the_stances_hits_give() -> None:
    # analyze() passes the matcher's own hit lists to the stance step instead of the Hit
    # values; every stance must be what assess_all makes of the hits alone.
    import json
    from pathlib import Path

    from monitor.commands.explain import article_from_dict
    from monitor.core.engine import analyze
    from monitor.rulefiles import default_rules_dir, load_ruleset

    rs = load_ruleset(default_rules_dir())
    corpus = Path(__file__).resolve().parent / "data" / "corpus"
    compared = 0
    for path in sorted(corpus.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            analysis = analyze(rs, article_from_dict(json.loads(line), f"{path.stem}-{n}"))
            targets = [t for t in rs.stance_targets if t in analysis.entities]
            alone = assess_all(analysis.article, targets, analysis.hits, rs.lexicon, rs.thresholds)
            assert analysis.stance == alone, (path.name, n)
            compared += len(targets)
    assert compared > 100
