"""benchmarks/engine.py still runs and prints the figures it promises (a tiny run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "engine.py"


def test_small_run_prints_one_json_object_last(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--articles", "40", "--rounds", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["rules"] == 1000
    assert result["aliases"] >= 5000
    assert 1500 < result["avg_article_bytes"] < 2600
    for key in (
        "articles_per_s",
        "match_only_articles_per_s",
        "baseline_articles_per_s",
        "ratio",
        "p99_ms",
    ):
        assert result[key] > 0
