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
from pathlib import Path
from types import ModuleType

import pytest

import monitor.core.engine as engine
import monitor.core.firing as firing
from monitor.app.daemon import COMPILED_MODULES, compiled_modules, matcher_build
from monitor.commands.explain import article_from_dict
from monitor.core.engine import analyze, explain_rules
from monitor.rulefiles import default_rules_dir, load_ruleset

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "monitor" / "core"
CORPORA = [
    REPO.parent / "shared" / "corpus" / "public.jsonl",
    *sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")),
]
COMPILED = not engine.__file__.endswith(".py") and not firing.__file__.endswith(".py")


def _source(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"monitor.core._{name}_source", CORE / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


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
