"""The compiled stance analysis (built by setup.py) against its Python source.

Where a C compiler was at hand, `pip install` compiles `monitor/core/stance.py` and
the typed kernel `monitor/core/_stance_native.pyx` that it calls for the scan, the
clause analysis and the weighing of cues. Without them, stance.py runs its own Python
for the same steps. These tests keep the two in step: the extensions must be built
from the sources as they are now, and the compiled analysis must reach exactly the
stances, scores and cues the pure-Python source reaches.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import monitor.core.stance as stance
from monitor.commands.explain import article_from_dict
from monitor.core.engine import RuleSet, analyze
from monitor.core.models import Article
from monitor.rulefiles import default_rules_dir, load_ruleset

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "monitor" / "core"
CORPORA = [
    REPO.parent / "shared" / "corpus" / "public.jsonl",
    *sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")),
]
NATIVE = stance._native is not None
TARGETS = ("nvidia", "sk_hynix", "samsung_electronics", "tsmc", "hbm")


def _pure() -> ModuleType:
    """stance.py loaded from its source, with the native kernel switched off."""
    spec = importlib.util.spec_from_file_location("monitor.core._stance_source", CORE / "stance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    module._native = None
    return module


def test_the_kernel_is_used_where_it_is_built() -> None:
    built = bool(sorted(CORE.glob("_stance_native.*.so")))
    lexicon = load_ruleset(default_rules_dir()).lexicon
    assert built == NATIVE
    assert bool(lexicon.plans) == built
    assert (lexicon.weighing is not None) == built


def _articles() -> list[Article]:
    """The labelled corpora, and articles mixed from their sentences so that cues,
    negations, debate markers and entities meet in new combinations."""
    out: list[Article] = []
    by_lang: dict[str, list[str]] = {"ko": [], "en": []}
    for path in CORPORA:
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            article = article_from_dict(json.loads(line), f"{path.stem}-{n}")
            out.append(article)
            pieces = [*article.text.split(". "), *article.text.split(", ")]
            by_lang.setdefault(article.lang, []).extend(p for p in pieces if p)
    rng = random.Random(11)
    for i in range(300):
        lang = "ko" if i % 2 else "en"
        pool = by_lang[lang]
        if not pool:
            continue
        parts = rng.choices(pool, k=rng.randint(1, 12))
        seps = rng.choices([". ", ", ", " ", "? ", "; "], k=len(parts))
        body = "".join(p + s for p, s in zip(parts, seps, strict=True)).strip()
        title = rng.choice(pool)[: rng.randint(0, 80)] + rng.choice(["", "?", "…", " vs "])
        out.append(article_from_dict({"title": title, "body": body, "lang": lang}, f"mixed-{i}"))
    return out


def _reports(module: Any, rs: RuleSet, lexicon: Any, article: Article) -> list[Any]:
    hits = analyze(rs, article, with_stance=False).hits
    out: list[Any] = []
    for target in TARGETS:
        report = module.assess_detailed(article, target, hits, lexicon, rs.thresholds)
        out.append((report.stance, report.cues, report.debate))
    found = module.assess_all(article, TARGETS, hits, lexicon, rs.thresholds)
    out.append(sorted(found.items()))
    return out


@pytest.mark.skipif(not NATIVE, reason="the stance kernel is not built here")
def test_compiled_stance_decides_what_the_source_decides() -> None:
    pure = _pure()
    rs = load_ruleset(default_rules_dir())
    lexicon = rs.lexicon
    pure_lexicon = pure.Lexicon(lexicon.languages, lexicon.weights, lexicon.roles)
    assert not pure_lexicon.plans  # the source runs its own Python
    with_cues = directions = 0
    for article in _articles():
        got = _reports(stance, rs, rs.lexicon, article)
        want = _reports(pure, rs, pure_lexicon, article)
        # Stance and Cue compare field by field; scores must be equal to the last bit.
        assert repr(got) == repr(want), article.item_id
        with_cues += any(cues for _, cues, _ in got[: len(TARGETS)])
        directions += sum(s.label.value in ("bullish", "bearish", "mixed") for s, _, _ in got[:-1])
    assert with_cues >= 200 and directions >= 200  # the articles do exercise the analysis


@pytest.mark.skipif(not NATIVE, reason="the stance kernel is not built here")
def test_prepared_weighing_weighs_as_the_source_does() -> None:
    """Records are prepared once per article and weighed for each target natively; any
    mix of subjects, owners and clause entities must weigh as `_tally` weighs it."""
    pure = _pure()
    lexicon = load_ruleset(default_rules_dir()).lexicon
    index, w = lexicon.index, lexicon.weights
    known = sorted(index.base)
    products = sorted(index.products)
    rng = random.Random(17)
    kinds = [stance.TARGET_GROUP, stance.DRIVER_GROUP, stance.COMPANY_GROUP]
    prepared = fallback = 0
    for round_ in range(400):
        # most articles name a few entities; some name more than the kernel's masks hold
        many = round_ % 10 == 0
        pool = [*known, *products, *(f"other_{i}" for i in range(90 if many else 3))]
        records = []
        for _ in range(rng.randint(0, 30)):
            records.append(
                stance._Record(
                    rng.choice(["title", "body"]),
                    rng.randint(0, 4),
                    f"cue{rng.randint(0, 9)}",
                    rng.choice([0.0, 1.0, -1.0, rng.uniform(-2, 2)]),
                    rng.choice(["price", "any", "driver", "company"]),
                    rng.choice([None, None, rng.choice(pool)]),
                    rng.choice([0, 0, 1]),
                    frozenset(rng.sample(kinds, rng.randint(0, 3))),
                    rng.choice([None, None, rng.choice(pool)]),
                    frozenset(rng.sample(pool, rng.randint(0, 3 if not many else 40))),
                    frozenset(rng.sample([stance._DRIVER, stance._COMPANY], rng.randint(0, 2))),
                    frozenset(rng.sample(pool, rng.randint(0, 3 if not many else 40))),
                    rng.random() < 0.2,
                    rng.random() < 0.1,
                    rng.randint(0, 500),
                    rng.random() < 0.2,
                )
            )
        recorded = tuple(records)
        weighed = stance._native.prepare(lexicon.weighing, recorded)
        prepared += weighed is not None
        fallback += weighed is None
        for target in ("nvidia", "sk_hynix", "tsmc", rng.choice(pool)):
            own = index.own(target)
            leads = rng.random() < 0.5
            want_cues: list[Any] = []
            analysis = pure._Analysis((), (), recorded, 0.0, False, frozenset(), frozenset(), {})
            want = pure._tally(analysis, own, index, w, leads, want_cues)
            got_cues: list[Any] = []
            if weighed is None:
                got = stance._native.tally(lexicon.weighing, recorded, own, leads, got_cues)
            else:
                got = stance._native.tally_prepared(weighed, own, leads, got_cues)
            assert repr(got) == repr(want)
            assert repr(got_cues) == repr(want_cues)
    assert prepared >= 300 and fallback >= 10
