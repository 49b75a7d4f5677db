"""The compiled engine and rule evaluation (built by setup.py) against their sources.

Where a C compiler was at hand, `pip install` compiles `monitor/core/engine.py` and
`monitor/core/firing.py` (the evaluation of rules that monitor/core/rules.py re-exports);
Python then imports the extensions and never reads the .py files. These tests keep
the two in step: the extensions must be built from the sources as they are now, and
the compiled engine must reach exactly the analysis (entities, hits, rule matches
with their reasons, stances) that the sources reach.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

import monitor.core.engine as engine
import monitor.core.firing as firing
from monitor.app.daemon import COMPILED_MODULES, compiled_modules, matcher_build
from monitor.commands.explain import article_from_dict
from monitor.core.engine import analyze, explain_rules
from monitor.core.models import Article
from monitor.rulefiles import default_rules_dir, load_ruleset

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "monitor" / "core"
CORPORA = [
    REPO.parent / "shared" / "corpus" / "public.jsonl",
    *sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")),
]
BENCH = REPO / "benchmarks" / "engine.py"
COMPILED = not engine.__file__.endswith(".py") and not firing.__file__.endswith(".py")


def _source(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"monitor.core._{name}_source", CORE / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def _corpus_articles() -> list[Article]:
    out: list[Article] = []
    for path in CORPORA:
        if path.exists():
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                out.append(article_from_dict(json.loads(line), f"{path.stem}-{n}"))
    return out


@pytest.mark.skipif(not COMPILED, reason="the engine runs as pure Python here")
def test_compiled_engine_analyses_as_the_source_does() -> None:
    pure_firing = _source("firing.py")
    pure = _source("engine.py")
    pure.fire_all = pure_firing.fire_all  # the source engine with the source evaluation
    rs = load_ruleset(default_rules_dir())
    fired = 0
    for path in CORPORA:
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            article = article_from_dict(json.loads(line), f"{path.stem}-{n}")
            got = analyze(rs, article)
            want = pure.analyze(rs, article)
            assert repr(got) == repr(want), article.item_id
            fired += len(got.rules)
            verdicts = explain_rules(rs, got)
            assert repr(verdicts) == repr(pure.explain_rules(rs, want)), article.item_id
    assert fired >= 50  # the corpora do fire rules


def test_compiled_firing_fires_and_explains_as_the_source_does() -> None:
    """The benchmark's scaled rule set (the pack and the synthetic shapes, regex
    conditions among them) over its articles and the corpora: the plans the source
    builds are the rules' own, and both evaluations give the same matches and the
    same verdicts, reasons and failures alike."""
    pure = _source("firing.py")
    spec = importlib.util.spec_from_file_location("bench_engine_firing", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rs = bench.scaled_ruleset(7)
    assert all(pure.make_plan(r) == r.plan for r in rs.rules)
    companies = [e for e in rs.entities.values() if e.id.startswith("co_")]
    fired = failed = 0
    for article in [*bench.make_articles(300, 7, companies), *_corpus_articles()]:
        facts = engine._scan(rs, article).facts
        positions = engine._candidates(rs, facts)
        got = firing.fire_all(rs.rules, positions, replace(facts, seen={}))
        want = pure.fire_all(rs.rules, positions, replace(facts, seen={}))
        assert repr(got) == repr(want), article.item_id
        fired += len(got)
        # candidates and a spread of the others, each memo shared as fire_all shares it
        ours, theirs = replace(facts, seen={}), replace(facts, seen={})
        for pos in sorted({*positions, *range(0, len(rs.rules), 25)}):
            verdict = firing.check(rs.rules[pos], ours)
            assert verdict == pure.check(rs.rules[pos], theirs), (article.item_id, pos)
            failed += verdict[1] is not None
        assert ours.seen == theirs.seen
    assert fired >= 1000 and failed >= 1000  # both outcomes are exercised


def test_the_daemon_reports_every_compiled_module() -> None:
    found = compiled_modules()
    assert list(found) == [name for name, _ in COMPILED_MODULES]
    for name in found:
        stem = name.rsplit(".", 1)[-1]
        assert found[name] == bool(sorted(CORE.glob(stem + ".*.so"))), name
    build = matcher_build()
    if all(found.values()):
        assert build == "compiled"
    elif not any(found.values()):
        assert build == "python"
    else:
        missing = [n.rsplit(".", 1)[-1] for n, b in found.items() if not b]
        assert build == "partial (python: " + ", ".join(missing) + ")"
