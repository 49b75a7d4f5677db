"""Table-driven stance cases: one general pattern each, in Korean and English.

The table is `tests/data/stance/cases.toml`; every case names the pattern it
checks. Cases run against the bundled lexicon in `rules/lexicon/`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from monitor.core.models import Article, StanceLabel
from monitor.core.stance import Lexicon, assess, compile_lexicon
from tests.fakes.entity_hits import find_hits

ROOT = Path(__file__).resolve().parent.parent
CASES: list[dict[str, Any]] = tomllib.loads(
    (ROOT / "tests/data/stance/cases.toml").read_text(encoding="utf-8")
)["case"]


def load_bundled_lexicon() -> Lexicon:
    docs = {
        str(p): tomllib.loads(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "rules/lexicon").glob("*.toml"))
    }
    return compile_lexicon(docs)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_bundled_lexicon()


def article(lang: str, title: str, body: str = "") -> Article:
    return Article(feed="test", item_id="t", title=title, body=body, lang=lang)  # type: ignore[arg-type]


def stance_of(lexicon: Lexicon, case: dict[str, Any], title: str | None = None) -> Any:
    a = article(case["lang"], case["title"] if title is None else title, case.get("body", ""))
    return assess(a, case.get("target", "nvidia"), find_hits(a), lexicon)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_stance_case(lexicon: Lexicon, case: dict[str, Any]) -> None:
    got = stance_of(lexicon, case)
    detail = f"{case['pattern']}: got {got.label.value} {got.score:+.2f} {got.evidence}"
    if "want" in case:
        assert got.label == StanceLabel(case["want"]), detail
    if "not" in case:
        assert got.label != StanceLabel(case["not"]), detail
    if "weaker_than" in case:
        plain = stance_of(lexicon, case, title=case["weaker_than"])
        assert abs(got.score) < abs(plain.score), f"{detail} vs {plain.score:+.2f}"
        assert plain.label != StanceLabel.NEUTRAL
    assert -1.0 <= got.score <= 1.0
    assert 0.0 <= got.confidence <= 1.0
    assert 1 <= len(got.evidence) <= 3 or got.label == StanceLabel.NEUTRAL


ARTICLES: list[dict[str, Any]] = [
    json.loads(line)
    for line in (ROOT / "tests/data/stance/articles.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.mark.parametrize("item", ARTICLES, ids=[a["id"] for a in ARTICLES])
def test_stance_of_whole_articles(lexicon: Lexicon, item: dict[str, Any]) -> None:
    """Multi-sentence stories, each written to exercise several patterns at once."""
    a = article(item["lang"], item["title"], item["body"])
    got = assess(a, "nvidia", find_hits(a), lexicon)
    assert got.label == StanceLabel(item["want"]), f"{got.score:+.2f} {got.evidence}"
    if got.label != StanceLabel.NEUTRAL:
        assert all(s in a.title or s in a.body for s in got.evidence)
