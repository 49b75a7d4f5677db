"""Lexicon files: validation errors that name file and cue, term syntax, compilation."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.errors import RuleError
from monitor.core.lexicon import expand_term, scan
from monitor.core.models import Article, Hit, StanceLabel
from monitor.core.stance import assess, assess_detailed, compile_lexicon
from tests.test_stance_cases import load_bundled_lexicon

COMMON: dict[str, Any] = {"entities": {"companies": ["nvidia"]}}


def tiny(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "lang": "en",
        "groups": {"demand": ["demand"], "up": ["rais{e,es,ed}", "grew"]},
        "pairs": [
            {
                "id": "demand-up",
                "subject": ["demand"],
                "predicate": ["up"],
                "polarity": "bullish",
            }
        ],
        "phrases": [{"id": "probe", "terms": ["probe"], "polarity": "bearish"}],
        "markers": {"negation_before": ["not", "never"], "boundary": [","]},
    }
    doc.update(over)
    return doc


def error_of(docs: dict[str, Any]) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_lexicon(docs)
    return info.value


def test_bundled_lexicon_compiles_for_both_languages() -> None:
    lex = load_bundled_lexicon()
    assert set(lex.languages) == {"ko", "en"}


def test_bad_polarity_names_file_and_cue() -> None:
    doc = tiny(phrases=[{"id": "beat", "terms": ["beat"], "polarity": "up"}])
    err = error_of({"rules/lexicon/en.toml": doc})
    assert err.path == "rules/lexicon/en.toml"
    assert err.rule == "beat"
    assert "rules/lexicon/en.toml" in str(err) and "'beat'" in str(err)


def test_unknown_group_in_pair_names_file_and_cue() -> None:
    pair = {"id": "orders-up", "subject": ["orderz"], "predicate": ["up"], "polarity": "bullish"}
    err = error_of({"x/en.toml": tiny(pairs=[pair])})
    assert (err.path, err.rule) == ("x/en.toml", "orders-up")
    assert "orderz" in err.message


def test_after_factor_out_of_range_names_file_and_cue() -> None:
    pair = {
        "id": "rule-lifted",
        "subject": ["demand"],
        "predicate": ["up"],
        "polarity": "bullish",
        "after_factor": 0.5,
    }
    err = error_of({"x/en.toml": tiny(pairs=[pair])})
    assert (err.path, err.rule) == ("x/en.toml", "rule-lifted")


def test_after_factor_lets_an_object_follow_its_verb() -> None:
    """ "Regulators lift the long-standing export curbs": with after_factor 1 the object
    after the verb is as near as a subject before it would be."""
    groups = {"rules": ["curbs"], "lift": ["lift"]}

    def lexicon(factor: float) -> Any:
        pair = {
            "id": "lifted",
            "subject": ["rules"],
            "predicate": ["lift"],
            "polarity": "bullish",
            "after_factor": factor,
        }
        doc = tiny(groups=groups, pairs=[pair], pair_window=30)
        return compile_lexicon({"common.toml": COMMON, "en.toml": doc})

    a = Article(
        feed="t", item_id="t", title="Regulators lift the long-standing export curbs", lang="en"
    )
    assert assess(a, "nvidia", [], lexicon(1.0)).label == StanceLabel.BULLISH
    assert assess(a, "nvidia", [], lexicon(2.0)).label == StanceLabel.NEUTRAL


def test_unknown_marker_class_is_an_error() -> None:
    err = error_of({"x/en.toml": tiny(markers={"negatoin": ["not"]})})
    assert err.path == "x/en.toml"
    assert "negatoin" in str(err)


def test_duplicate_cue_id_is_an_error() -> None:
    phrases = [
        {"id": "probe", "terms": ["probe"], "polarity": "bearish"},
        {"id": "probe", "terms": ["subpoena"], "polarity": "bearish"},
    ]
    err = error_of({"x/en.toml": tiny(phrases=phrases)})
    assert err.rule == "probe"


def test_unbalanced_braces_name_the_cue() -> None:
    phrases = [{"id": "miss", "terms": ["miss{ed,es"], "polarity": "bearish"}]
    err = error_of({"x/en.toml": tiny(phrases=phrases)})
    assert err.rule == "miss"


def test_unknown_key_and_bad_weight_are_errors() -> None:
    assert error_of({"x/en.toml": tiny(colour="red")}).path == "x/en.toml"
    err = error_of({"x/common.toml": {"weights": {"hedge": -1}}})
    assert err.path == "x/common.toml" and err.field == "weights.hedge"


def test_two_shared_settings_files_are_an_error() -> None:
    err = error_of({"a/common.toml": COMMON, "a/more.toml": COMMON})
    assert err.path == "a/more.toml"


def test_a_language_without_cues_is_an_error() -> None:
    err = error_of({"x/ko.toml": {"lang": "ko", "groups": {"a": ["b"]}}})
    assert err.path == "x/ko.toml"


def test_brace_expansion() -> None:
    assert expand_term("rais{e,es,ed}") == ["raise", "raises", "raised"]
    assert expand_term("{cut,trim}{,s}") == ["cut", "cuts", "trim", "trims"]


def words(lang: str, text: str) -> list[str]:
    lex = load_bundled_lexicon()
    return [text[t.start : t.end] for t in scan(lex.languages[lang], text)]


def test_latin_terms_match_whole_words_only() -> None:
    assert "fell" in words("en", "Shares fell 3%")
    assert "fell" not in words("en", "A fellow analyst")
    assert "no" not in words("en", "Nvidia is notable")


def test_left_bounded_korean_negator() -> None:
    assert "안 " in words("ko", "주가가 안 떨어졌다")
    assert "안 " not in words("ko", "대응 방안 마련")


def test_korean_space_in_a_term_is_optional() -> None:
    assert "기대에 못미" in words("ko", "실적이 기대에 못미쳤다")
    assert "기대에 못 미" in words("ko", "실적이 기대에 못 미쳤다")


def test_lexicons_are_data_a_new_phrase_changes_the_stance() -> None:
    a = Article(feed="t", item_id="1", title="Nvidia faces a probe", lang="en")
    hits = [Hit("nvidia", "Nvidia", "title", 0, 6)]
    lex = compile_lexicon({"x/en.toml": tiny(), "x/common.toml": COMMON})
    assert assess(a, "nvidia", hits, lex).label == StanceLabel.BEARISH
    calmer = tiny(phrases=[{"id": "probe", "terms": ["probe"], "polarity": "bullish"}])
    lex2 = compile_lexicon({"x/en.toml": calmer, "x/common.toml": COMMON})
    assert assess(a, "nvidia", hits, lex2).label == StanceLabel.BULLISH


def test_pairs_and_negation_in_a_custom_lexicon() -> None:
    lex = compile_lexicon({"x/en.toml": tiny()})
    a = Article(feed="t", item_id="1", title="Cloud demand never grew", lang="en")
    report = assess_detailed(a, "nvidia", [], lex)
    assert [c.cue_id for c in report.cues] == ["demand-up"]
    assert report.cues[0].negated
    assert report.stance.label == StanceLabel.BEARISH


def test_empty_lexicon_gives_neutral() -> None:
    a = Article(feed="t", item_id="1", title="Nvidia shares plunge", lang="en")
    assert assess(a, "nvidia", [], compile_lexicon({})).label == StanceLabel.NEUTRAL
