"""Hot reload: a running watcher picks up rule edits within 2 s; a broken edit keeps
the last good set and reports file:line. Uses a real directory and real watchfiles."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.app.rulewatch import RuleWatcher
from monitor.core.engine import analyze
from monitor.core.models import Article

ENTITIES = '[[entity]]\nid = "nvidia"\nstance_target = true\naliases.en = ["Nvidia"]\n'


def rule(rule_id: str, item: str = "nvidia") -> str:
    return (
        f'[[rule]]\nid = "{rule_id}"\ntitle = "T"\ndescription = "D"\n'
        f'[rule.when]\nall = ["{item}"]\n'
    )


def fired(w: RuleWatcher) -> list[str]:
    a = analyze(w.current, Article(feed="t", item_id="1", title="Nvidia shares fall"))
    return [m.rule_id for m in a.rules]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "entities.toml").write_text(ENTITIES, encoding="utf-8")
    (tmp_path / "rules.toml").write_text(rule("first"), encoding="utf-8")
    return tmp_path


@pytest.fixture
async def watcher(rules_dir: Path) -> AsyncIterator[RuleWatcher]:
    events: list[tuple[bool, str]] = []
    w = RuleWatcher(rules_dir, on_reload=lambda ok, detail: events.append((ok, detail)))
    w.events = events  # type: ignore[attr-defined]
    stop = asyncio.Event()
    task = asyncio.create_task(w.watch(stop))
    await asyncio.sleep(0.3)  # let the watcher register before the test edits files
    yield w
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def wait_for_generation(w: RuleWatcher, generation: int, limit: float) -> float:
    start = time.monotonic()
    while w.generation < generation and time.monotonic() - start < limit:
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def wait_for_error(w: RuleWatcher, limit: float) -> float:
    start = time.monotonic()
    while w.last_error is None and time.monotonic() - start < limit:
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_an_edit_takes_effect_within_two_seconds(
    watcher: RuleWatcher, rules_dir: Path
) -> None:
    assert fired(watcher) == ["first"]
    (rules_dir / "rules.toml").write_text(rule("second"), encoding="utf-8")
    took = await wait_for_generation(watcher, 1, 3.0)
    assert fired(watcher) == ["second"]
    assert took < 2.0


async def test_a_new_file_is_picked_up(watcher: RuleWatcher, rules_dir: Path) -> None:
    (rules_dir / "more.toml").write_text(rule("extra"), encoding="utf-8")
    await wait_for_generation(watcher, 1, 3.0)
    assert sorted(fired(watcher)) == ["extra", "first"]


async def test_a_syntax_error_keeps_the_old_rules_and_reports_file_line(
    watcher: RuleWatcher, rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="monitor.app.rulewatch")
    (rules_dir / "rules.toml").write_text(rule("second") + "oops = [\n", encoding="utf-8")
    took = await wait_for_error(watcher, 3.0)
    assert took < 2.0
    assert fired(watcher) == ["first"]  # the last good set still serves
    err = str(watcher.last_error)
    assert f"{rules_dir / 'rules.toml'}:7" in err and "TOML syntax error" in err
    assert watcher.events[-1][0] is False  # type: ignore[attr-defined]
    logged = [r for r in caplog.records if r.getMessage() == "rules_reload_failed"]
    assert logged and f"{rules_dir / 'rules.toml'}:7" in str(logged[0].__dict__)
    # fixing the file recovers
    (rules_dir / "rules.toml").write_text(rule("third"), encoding="utf-8")
    await wait_for_generation(watcher, 1, 3.0)
    assert fired(watcher) == ["third"]
    assert watcher.last_error is None


async def test_a_bad_reference_keeps_the_old_rules(watcher: RuleWatcher, rules_dir: Path) -> None:
    (rules_dir / "rules.toml").write_text(rule("second", item="nvidiaa"), encoding="utf-8")
    await wait_for_error(watcher, 3.0)
    assert fired(watcher) == ["first"]
    assert "rules.toml:6: rule 'second': field 'when.all.0': unknown entity" in str(
        watcher.last_error
    )


async def test_files_that_are_not_toml_are_ignored(watcher: RuleWatcher, rules_dir: Path) -> None:
    (rules_dir / "notes.txt").write_text("scratch", encoding="utf-8")
    await asyncio.sleep(0.8)
    assert watcher.generation == 0


def test_reload_now_without_a_watcher(rules_dir: Path) -> None:
    w = RuleWatcher(rules_dir)
    (rules_dir / "rules.toml").write_text(rule("second"), encoding="utf-8")
    assert w.reload() is True
    assert fired(w) == ["second"]
    (rules_dir / "rules.toml").write_text("[[rule]]\nid = 3\n", encoding="utf-8")
    assert w.reload() is False
    assert fired(w) == ["second"]
