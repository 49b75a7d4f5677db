"""The README's rule-tuning walkthrough, step by step, so it stays true."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TRUCK_STORY = {
    "id": "t1",
    "lang": "ko",
    "title": "현대차 H100 트럭, 엔비디아 AI칩 탑재 검토",
    "body": "현대차는 H100 포터 트럭의 자율주행 기능에 엔비디아 칩을 검토 중이라고 밝혔다.",
}


def _explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hyundai_h100_truck_is_not_nvidias_gpu(tmp_path: Path) -> None:
    story = tmp_path / "story.jsonl"
    story.write_text(json.dumps(TRUCK_STORY, ensure_ascii=False) + "\n", encoding="utf-8")

    human = _explain(str(story))
    assert human.returncode == 0, human.stderr
    assert "[[엔비디아]]{nvidia}" in human.stdout  # hits are highlighted with their entity
    assert "[[H100]]" not in human.stdout  # the truck: "H100 포터" is an exclude form
    assert "stance:" in human.stdout and "nvidia: neutral" in human.stdout

    [result] = [json.loads(line) for line in _explain("--json", str(story)).stdout.splitlines()]
    assert result["entities"] == ["nvidia"]
    assert result["stance"]["nvidia"]["label"] == "neutral"


def test_a_broken_rule_edit_is_named_by_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.toml").write_text(
        '[[rule]]\nid = "x"\ntitle = "X"\ndescription = "x"\n[rule.when]\nall = ["nvidiaa"]\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "rules.toml:6" in out and "'x'" in out and "nvidiaa" in out


def test_check_reads_the_rules_beside_the_config_like_run_does(tmp_path: Path) -> None:
    (tmp_path / "cfg" / "rules").mkdir(parents=True)
    (tmp_path / "cfg" / "rules" / "rules.toml").write_text("[[rule]\n", encoding="utf-8")
    (tmp_path / "cfg" / "config.toml").write_text('[rules]\ndir = "rules"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", "cfg/config.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "cfg/rules/rules.toml:1" in proc.stdout + proc.stderr
