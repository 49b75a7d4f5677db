"""The compiled modules (built by setup.py) and their sources; the matcher in detail.

Where a C compiler was at hand, `pip install` compiles the matcher's hot loop; Python
then imports the extension and never reads the .py file. These tests keep the two
in step: the extension must be built from the source as it is now, and it must find
exactly what the pure-Python module finds.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

import monitor.core.matcher as matcher
from monitor.app.daemon import COMPILED_MODULES, compiled_modules
from monitor.core.engine import _entity_aliases
from monitor.rulefiles import default_rules_dir, load_ruleset

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "monitor" / "core"
SOURCE = CORE / "matcher.py"
CORPUS = REPO.parent / "shared" / "corpus" / "public.jsonl"
COMPILED = not matcher.__file__.endswith(".py")


def _pure() -> ModuleType:
    """matcher.py loaded from its source, with the native kernel switched off."""
    spec = importlib.util.spec_from_file_location("monitor.core._matcher_source", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    module._native = None
    return module


@pytest.mark.parametrize(("module", "source"), COMPILED_MODULES)
def test_every_extension_is_built_from_its_current_source(module: str, source: str) -> None:
    """An extension older than its source runs the old code: reinstall after an edit."""
    built = sorted(CORE.glob(Path(source).stem + ".*.so"))
    if not built:
        pytest.skip(f"{module} runs as Python here")
    assert (CORE / source).stat().st_mtime <= built[0].stat().st_mtime, (
        f"monitor/core/{source} changed after its extension was built: "
        "run `pip install -e .` (or `make install`) again"
    )


def _texts() -> list[tuple[str, str]]:
    rng = random.Random(5)
    out: list[tuple[str, str]] = []
    if CORPUS.exists():
        for line in CORPUS.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.append((item.get("title", ""), item.get("text", "")))
    # Edge cases of every boundary rule, shuffled together so hits meet each other.
    pieces = [
        "엔비디아의", "딥시크가", "하이닉스株", "SK 하이닉스", "SK하이닉스", "H20",
        "H200", "H100을", "MAGIC", "AGI", "H100s", "메타버스",
        "메타", "Samsung Biologics", "삼성전자", "NVDA", "nvda", "005930",
        "범용 인공지능", "범용인공지능", "Hyundai H100 truck", "Nvidia GPU H100", "TSMC", "tsmc's",
        "export controls", "수출 통제", "capex", "설비투자", "HBM3E", "블랙웰",
        "Blackwell", "OpenAI", "오픈AI", "Microsoft", "DeepSeek-R1", "x",
        "가", ".", "1", " ",
    ]  # fmt: skip
    for _ in range(400):
        words = rng.choices(pieces, k=rng.randint(1, 30))
        seps = rng.choices(["", " ", ", ", ". "], k=len(words))
        text = "".join(w + s for w, s in zip(words, seps, strict=True)).strip()
        out.append((text[: rng.randint(0, 40)], text))
    return out


@pytest.mark.skipif(not COMPILED, reason="the matcher runs as pure Python here")
def test_compiled_matcher_finds_what_the_source_finds() -> None:
    pure = _pure()
    rs = load_ruleset(default_rules_dir())
    aliases = [
        pure.AliasSpec(a.entity, a.text, a.kind, a.cased, a.near, a.avoid, a.window)
        for e in rs.entities.values()
        for a in _entity_aliases(e)
    ]
    excludes = {e.id: list(e.exclude) for e in rs.entities.values() if e.exclude}
    terms = sorted({t for r in rs.rules for t in r.terms()})
    reference = pure.build_matcher(aliases, excludes, terms)
    compiled = rs.matcher
    with_hits = 0
    for title, body in _texts():
        title, body = matcher.normalize_text(title), matcher.normalize_text(body)
        found = reference.find(title, body)
        assert compiled.find(title, body) == found, (title, body)
        assert compiled.entities(title, body) == reference.entities(title, body), (title, body)
        with_hits += bool(found[0])
    assert with_hits >= 300  # the texts do exercise the checks


@pytest.mark.skipif(not COMPILED, reason="the matcher runs as pure Python here")
def test_compiled_matcher_takes_what_the_source_takes() -> None:
    """Annotations are not enforced by the extension, as they are not by Python."""

    class Text(str):
        pass

    assert matcher.normalize_text(None) == ""  # type: ignore[arg-type]
    assert matcher.normalize_text(Text(" SK  하이닉스 ")) == "SK 하이닉스"
    assert matcher.fold(Text("NVDA")) == "nvda"


def test_the_daemon_reports_how_the_matcher_runs() -> None:
    assert compiled_modules()["monitor.core.matcher"] == COMPILED
