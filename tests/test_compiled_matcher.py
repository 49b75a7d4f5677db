"""The native matcher kernel (built by setup.py) against the matcher's Python.

Where a C compiler was at hand, `pip install` builds `monitor/core/_matcher_native.pyx`
and `build_matcher` gives each matcher a kernel that does `Matcher.find_by_field` and
`Matcher.entities`; `_raw`, `_check`, `_context` and `_accept` in monitor/core/matcher.py
are the reference it replaces (a matcher without a kernel runs them). The two must
report the same hits, the same term hits in the same order and the same entities: over
the corpora and the benchmark's articles with the bundled and the benchmark's rule
sets, and over random texts that put a small matcher's aliases against every edge rule
(Hangul and ASCII boundaries, plural "s", cased aliases and tickers, shared keys,
exclude forms, guards with near and avoid words, text whose lower case is longer).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType

import pytest

from monitor.core import matcher
from monitor.core.engine import normalized
from monitor.core.matcher import AliasSpec, Matcher, build_matcher, normalize_text
from monitor.core.models import Article
from monitor.rulefiles import default_rules_dir, load_ruleset

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "monitor" / "core"
CORPORA = [
    REPO.parent / "shared" / "corpus" / "public.jsonl",
    *sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")),
]
NATIVE = matcher._native is not None
needs_native = pytest.mark.skipif(not NATIVE, reason="the matcher runs as Python here")


def test_the_kernel_is_used_where_it_is_built() -> None:
    # (that the extension is not older than its source: tests/test_compiled.py)
    built = bool(sorted(CORE.glob("_matcher_native.*.so")))
    assert built == NATIVE
    assert (load_ruleset(default_rules_dir()).matcher.native is not None) == built


def _python(m: Matcher) -> Matcher:
    """The same matcher without its kernel: the Python reference."""
    return dataclasses.replace(m, native=None)


def _same(m: Matcher, title: str, body: str) -> tuple[int, int]:
    """Assert that kernel and reference agree on one article; (hits, term hits) found."""
    ref = _python(m)
    got = m.find_by_field(title, body)
    want = ref.find_by_field(title, body)
    assert got[:2] == want[:2], (title, body)
    assert list(got[2].items()) == list(want[2].items()), (title, body)  # in order
    assert m.entities(title, body) == ref.entities(title, body), (title, body)
    return len(got[0]) + len(got[1]), sum(len(v) for v in got[2].values())


def _corpus_articles() -> list[Article]:
    out: list[Article] = []
    for path in CORPORA:
        if path.exists():
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                item = json.loads(line)
                out.append(
                    Article(
                        feed="t",
                        item_id=f"{path.stem}-{n}",
                        title=item.get("title", ""),
                        body=item.get("text", item.get("body", "")),
                    )
                )
    return out


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_engine", REPO / "benchmarks" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_native
def test_kernel_finds_in_the_corpora_what_the_reference_finds() -> None:
    rs = load_ruleset(default_rules_dir())
    articles = _corpus_articles()
    assert len(articles) > 50
    hits = terms = 0
    for a in articles:
        a = normalized(a)
        h, t = _same(rs.matcher, a.title, a.text)
        hits, terms = hits + h, terms + t
    assert hits > 200 and terms > 200


@needs_native
def test_kernel_finds_in_the_benchmark_what_the_reference_finds() -> None:
    bench = _benchmark()
    rs = bench.scaled_ruleset(7)
    companies = [e for e in rs.entities.values() if e.id.startswith("co_")]
    articles = [*bench.make_articles(300, 7, companies), *_corpus_articles()]
    hits = 0
    for a in articles:
        a = normalized(a)
        hits += _same(rs.matcher, a.title, a.text)[0]
    assert hits > 5000


def edge_matcher() -> Matcher:
    """Aliases, excludes, guards and terms that meet each other on shared keys."""
    return build_matcher(
        [
            AliasSpec("meta", "메타"),
            AliasSpec("meta", "Meta Platforms"),
            AliasSpec("twin", "메타"),  # a second entity on the same key
            AliasSpec("cased", "Meta", cased=True),  # a cased record on an uncased key
            AliasSpec("ticker", "META", kind="ticker"),  # and a second one
            AliasSpec("hynix", "SK 하이닉스"),
            AliasSpec("hynix", "하이닉스"),
            AliasSpec("gpu", "GPU"),
            AliasSpec("h20", "H20"),
            AliasSpec("h100", "H100", near=("GPU", "엔비디아"), window=12),
            AliasSpec("millis", "ms", near=("time",), window=10),
            AliasSpec("ms", "MS", cased=True, near=("메타", "Microsoft"), window=20),
            AliasSpec("nvda", "NVDA", kind="ticker"),
            AliasSpec("nvda", "엔비디아"),
            AliasSpec("agi", "AGI", avoid=("gross income",)),
            AliasSpec("agi", "범용 인공지능"),
            AliasSpec("capex", "투자", near=("데이터센터", "AI"), avoid=("투자자문",), window=8),
            AliasSpec("capex", "capex", near=("AI",), window=30),
            AliasSpec("ai", "AI"),
            AliasSpec("latin", "École"),
            AliasSpec("sigma", "ΣΑΣ"),
        ],
        excludes={
            "meta": ["메타버스", "meta-analysis"],
            "capex": ["투자자", "AI 인프라"],
            "agi": ["MAGIC"],
            "ai": ["AI 인프라"],
        },
        terms=["급락", "GPU", "메타", "AI", "s", "투자", "İstanbul"],
    )


_PIECES = [
    "메타", "메타의", "메타버스", "Meta", "META", "meta", "Meta Platforms", "meta-analysis",
    "SK 하이닉스", "SK하이닉스", "하이닉스", "하이닉스株", "GPU", "GPUs", "gpus", "H20",
    "H200", "H20s", "H100", "H100을", "H100s", "MS", "ms", "Ms", "Microsoft", "NVDA", "nvda",
    "엔비디아", "AGI", "MAGIC", "agile", "gross income", "time", "범용 인공지능", "범용인공지능",
    "투자", "투자자", "투자자문", "투자를", "데이터센터", "AI", "AI 인프라", "capex", "CAPEX",
    "급락", "École", "école", "ΣΑΣ", "σας", "İstanbul", "istanbul", "s", "S", "x", "1", "가",
    "힣", "ㄱ", " ", " ", " ", ".", "-", "(", ")", ",", "😀", "·", "…", "é",
]  # fmt: skip


@needs_native
def test_kernel_checks_random_text_as_the_reference_does() -> None:
    m = edge_matcher()
    rng = random.Random(11)
    with_hits = with_terms = 0
    for _ in range(6000):
        words = rng.choices(_PIECES, k=rng.randint(0, 24))
        seps = rng.choices(["", "", " ", " ", ", ", ". "], k=len(words))
        text = normalize_text("".join(w + s for w, s in zip(words, seps, strict=True)))
        title = (
            text[: rng.randint(0, 30)]
            if rng.random() < 0.5
            else normalize_text("".join(rng.choices(_PIECES, k=rng.randint(0, 6))))
        )
        hits, terms = _same(m, title, text)
        with_hits += bool(hits)
        with_terms += bool(terms)
    assert with_hits > 4000 and with_terms > 4000


@needs_native
def test_every_guard_and_exclude_decides_somewhere() -> None:
    """The random texts above do reach each rule: fixed cases of each, both ways."""
    m = edge_matcher()
    cases = [
        ("H100 GPU", {"h100", "gpu"}),
        ("H100 is far, far, far away: GPU", {"gpu"}),
        ("MS와 메타", {"ms", "meta", "twin"}),
        ("MS alone", set()),
        ("ms와 메타", {"meta", "twin"}),
        ("MS time", {"millis"}),
        ("ms time", {"millis"}),
        ("AGI", {"agi"}),
        ("AGI, gross income", set()),
        ("MAGIC", set()),
        ("데이터센터에 투자", {"capex"}),
        ("데이터센터에 투자, 투자자문", set()),
        ("AI 인프라 투자", set()),  # the near word is inside an exclude form
        ("AI 투자", {"ai", "capex"}),
        ("메타버스", {"twin"}),  # the exclude form is meta's only
        ("Meta는", {"cased"}),
        ("META는", {"ticker"}),
        ("H100s GPUs", {"h100", "gpu"}),
        ("H20s", {"h20"}),
        ("H200", set()),
        ("하이닉스株", {"hynix"}),
        ("SK하이닉스", {"hynix"}),
        ("가메타", set()),
        ("école", {"latin"}),
        ("σας", {"sigma"}),
    ]
    for text, expected in cases:
        assert set(m.entities("", text)) == expected, text
        assert set(_python(m).entities("", text)) == expected, text
        _same(m, text, text)


@needs_native
def test_kernel_takes_what_the_reference_takes() -> None:
    class Text(str):
        pass

    m = edge_matcher()
    for title, body in [("", ""), ("메타", ""), ("", "메타"), (Text("H100 GPU"), Text("메타"))]:
        _same(m, title, body)
    assert m.find_by_field(None, "메타") == _python(m).find_by_field(None, "메타")  # type: ignore[arg-type]
    empty = build_matcher([])
    assert empty.find_by_field("메타", "x") == ([], [], {})
    assert empty.entities("메타", "x") == ()


@needs_native
def test_kernel_lower_cases_as_str_lower() -> None:
    from monitor.core._matcher_native import lower

    for c in [*range(0x10000), *range(0x10000, 0x110000, 97)]:
        ch = chr(c)
        assert lower(ch) == ch.lower(), hex(c)
        assert lower("가" + ch + "A") == ("가" + ch + "A").lower(), hex(c)
    for text in ["ΣΑΣ Σ", "aΣ가", "İ가", "가나AB", "ÀÉ", "été", "Straße", "가ǅ", "Ab😀"]:
        assert lower(text) == text.lower(), text
