"""What an installed package needs beside its code: the bundled rules and the demo data."""

from __future__ import annotations

import filecmp
from importlib import resources
from pathlib import Path

from monitor.rulefiles import default_rules_dir

REPO = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.toml"))
        if p.is_file()
    }


def test_bundled_rule_pack_is_the_repository_rules() -> None:
    """`monitor run` without ./rules uses the bundled pack: it must be rules/ itself.

    In a checkout monitor/defaults/rules links to rules/; a wheel carries a copy.
    """
    repo, bundled = _tree(REPO / "rules"), _tree(default_rules_dir())
    assert sorted(bundled) == sorted(repo)
    drifted = [name for name in repo if repo[name] != bundled[name]]
    assert drifted == [], f"bundled rules differ from rules/: {drifted}"
    assert filecmp.dircmp(REPO / "rules", default_rules_dir()).left_only == []


def test_demo_feeds_ship_with_the_package() -> None:
    feeds = resources.files("monitor.demo") / "feeds"
    names = sorted(p.name for p in feeds.iterdir() if p.name.endswith(".xml"))
    assert names == ["gnews-ko.xml", "late-ko.xml", "wire-en.xml", "yonhap-market.xml"]
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"demo/feeds/*.xml"' in pyproject and '"defaults/**/*"' in pyproject
