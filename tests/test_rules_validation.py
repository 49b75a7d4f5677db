"""Rule-file validation: every kind of mistake is reported with file, line, id and field.

Each case writes a real rule directory under tmp_path and loads it the way the
daemon and `monitor check` do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import RulesConfig
from monitor.core.errors import RuleError
from monitor.core.rules import RuleFileErrors
from monitor.rulefiles import load_ruleset

ENTITIES = """\
[[entity]]
id = "nvidia"
stance_target = true
aliases.en = ["Nvidia"]

[[entity]]
id = "deepseek"
aliases.en = ["DeepSeek"]
"""

RULE_HEAD = """\
[[rule]]
id = "r1"
title = "A rule"
description = "One line."
"""


def write(tmp_path: Path, rules: str, entities: str = ENTITIES) -> Path:
    (tmp_path / "entities.toml").write_text(entities, encoding="utf-8")
    (tmp_path / "rules.toml").write_text(rules, encoding="utf-8")
    return tmp_path


def problems(directory: Path, **kw: object) -> list[RuleError]:
    with pytest.raises(RuleFileErrors) as info:
        load_ruleset(directory, **kw)  # type: ignore[arg-type]
    return list(info.value.errors)


# (rules.toml text, line, rule id, field, message fragment)
RULE_CASES = [
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"\n',
        6,
        None,
        None,
        "TOML syntax error",
        id="toml-syntax",
    ),
    pytest.param(
        '[[rules]]\nid = "x"\n',
        None,
        None,
        "rules",
        "unknown top-level table",
        id="unknown-table",
    ),
    pytest.param(
        RULE_HEAD + 'colour = "red"\n[rule.when]\nall = ["nvidia"]\n',
        5,
        "r1",
        "colour",
        "Extra inputs",
        id="unknown-key",
    ),
    pytest.param(
        '[[rule]]\nid = "r1"\ndescription = "d"\n[rule.when]\nall = ["nvidia"]\n',
        1,
        "r1",
        "title",
        "Field required",
        id="missing-title",
    ),
    pytest.param(
        RULE_HEAD + 'severity = "loud"\n[rule.when]\nall = ["nvidia"]\n',
        5,
        "r1",
        "severity",
        "'info', 'notice', 'warning' or 'critical'",
        id="bad-severity",
    ),
    pytest.param(
        RULE_HEAD + 'cooldown = "5 parsecs"\n[rule.when]\nall = ["nvidia"]\n',
        5,
        "r1",
        "cooldown",
        "not a duration",
        id="bad-cooldown",
    ),
    pytest.param(
        '[[rule]]\nid = "Bad Id"\ntitle = "t"\ndescription = "d"\n[rule.when]\nall = ["nvidia"]\n',
        2,
        "Bad Id",
        "id",
        "pattern",
        id="bad-rule-id",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nnone = ["nvidia"]\n',
        5,
        "r1",
        "when",
        "at least one item in `all` or `any`",
        id="no-condition",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nany = [["nvidia"], []]\n',
        5,
        "r1",
        "when",
        "`any` group is empty",
        id="empty-any-group",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidiaa"]\n',
        6,
        "r1",
        "when.all.0",
        "unknown entity 'nvidiaa'",
        id="unknown-entity-all",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nany = ["term:x", "openai"]\n',
        7,
        "r1",
        "when.any.1",
        "unknown entity 'openai'",
        id="unknown-entity-any",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nnone = ["meta"]\n',
        7,
        "r1",
        "when.none.0",
        "unknown entity 'meta'",
        id="unknown-entity-none",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia", "re:(("]\n',
        6,
        "r1",
        "when.all.1",
        "bad regular expression",
        id="bad-regex",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["term:"]\n',
        6,
        "r1",
        "when.all.0",
        "empty term",
        id="empty-term",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nmin_mentions = { tsmc = 2 }\n',
        7,
        "r1",
        "when.min_mentions.tsmc",
        "unknown entity 'tsmc'",
        id="min-mentions-unknown",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nstance = { tsmc = ["bearish"] }\n',
        7,
        "r1",
        "when.stance.tsmc",
        "unknown entity 'tsmc'",
        id="stance-unknown-entity",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nstance = { deepseek = ["bearish"] }\n',
        7,
        "r1",
        "when.stance.deepseek",
        "not a stance target",
        id="stance-not-a-target",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nstance = { nvidia = ["gloomy"] }\n',
        7,
        "r1",
        "when.stance.nvidia.0",
        "'bullish', 'bearish', 'mixed' or 'neutral'",
        id="stance-bad-label",
    ),
    pytest.param(
        RULE_HEAD + '[rule.when]\nall = ["nvidia"]\nlangs = ["fr"]\n',
        7,
        "r1",
        "when.langs.0",
        "'ko' or 'en'",
        id="bad-lang",
    ),
    pytest.param(
        RULE_HEAD
        + '[rule.when]\nall = ["nvidia"]\n\n'
        + RULE_HEAD.replace("A rule", "Again")
        + '[rule.when]\nall = ["nvidia"]\n',
        8,
        "r1",
        "id",
        "duplicate rule id",
        id="duplicate-rule",
    ),
]


@pytest.mark.parametrize(("text", "line", "rule", "field", "fragment"), RULE_CASES)
def test_rule_errors_name_file_line_rule_and_field(
    tmp_path: Path, text: str, line: int | None, rule: str | None, field: str | None, fragment: str
) -> None:
    found = problems(write(tmp_path, text))
    assert len(found) == 1, [str(p) for p in found]
    p = found[0]
    assert p.path == str(tmp_path / "rules.toml")
    assert (p.line, p.rule, p.field) == (line, rule, field)
    assert fragment in p.message
    assert str(p).startswith(f"{tmp_path / 'rules.toml'}{':' + str(line) if line else ''}: ")


GOOD_RULE = RULE_HEAD + '[rule.when]\nall = ["nvidia"]\n'

# (entities.toml text, line, entity id, field, message fragment)
ENTITY_CASES = [
    pytest.param(
        '[[entity]]\nid = "nvidia"\nname = "Nvidia"\n',
        1,
        "nvidia",
        None,
        "at least one alias, ticker or form",
        id="no-alias",
    ),
    pytest.param(
        ENTITIES + '\n[[entity]]\nid = "Deep-Seek"\naliases.en = ["DeepSeek"]\n',
        11,
        "Deep-Seek",
        "id",
        "pattern",
        id="bad-entity-id",
    ),
    pytest.param(
        '[[entity]]\nid = "nvidia"\naliases.en = ["Nvidia"]\n\n[[entity]]\nid = "nvidia"\n'
        'aliases.ko = ["엔비디아"]\n',
        5,
        "nvidia",
        "id",
        "duplicate entity id",
        id="duplicate-entity",
    ),
    pytest.param(
        '[[entity]]\nid = "nvidia"\nalias = ["Nvidia"]\n',
        3,
        "nvidia",
        "alias",
        "Extra inputs",
        id="unknown-entity-key",
    ),
    pytest.param(
        '[[entity]]\nid = "nvidia"\naliases.en = ["Nvidia", " "]\n',
        1,
        "nvidia",
        None,
        "empty alias",
        id="blank-alias",
    ),
    pytest.param(
        '[[entity]]\nid = "nvidia"\naliases.en = ["Nvidia"]\ncontext.window = 0\n',
        4,
        "nvidia",
        "context.window",
        "greater than or equal to 1",
        id="bad-window",
    ),
    pytest.param(
        '[[entity]]\nid = "nvidia"\naliases.en = ["Nvidia"]\n[[entity.forms]]\nnear = ["x"]\n',
        4,
        "nvidia",
        "forms.0.aliases",
        "Field required",
        id="form-without-aliases",
    ),
]


@pytest.mark.parametrize(("text", "line", "entity", "field", "fragment"), ENTITY_CASES)
def test_entity_errors_name_file_line_id_and_field(
    tmp_path: Path, text: str, line: int, entity: str, field: str | None, fragment: str
) -> None:
    found = problems(write(tmp_path, GOOD_RULE, entities=text))
    assert len(found) == 1, [str(p) for p in found]
    p = found[0]
    assert (p.path, p.line, p.rule, p.field) == (
        str(tmp_path / "entities.toml"),
        line,
        entity,
        field,
    )
    assert fragment in p.message


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, RULE_HEAD + '[rule.when]\nall = ["nvidiaa", "re:(("]\n')
    (tmp_path / "more.toml").write_text("[[rule]\n", encoding="utf-8")
    found = problems(tmp_path)
    assert sorted((Path(p.path or "").name, p.line) for p in found) == [
        ("more.toml", 1),
        ("rules.toml", 6),
        ("rules.toml", 6),
    ]


def test_unknown_destination_when_notifiers_are_known(tmp_path: Path) -> None:
    text = RULE_HEAD + 'destinations = ["desk", "nowhere"]\n[rule.when]\nall = ["nvidia"]\n'
    write(tmp_path, text)
    assert load_ruleset(tmp_path).rules[0].destinations == ("desk", "nowhere")
    (p,) = problems(tmp_path, notifiers=["desk"])
    assert (p.line, p.rule, p.field) == (5, "r1", "destinations")
    assert "unknown destination 'nowhere'" in p.message


def test_configured_stance_target_must_be_an_entity(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE)
    (p,) = problems(tmp_path, config=RulesConfig(stance_targets=["nvidia", "intel"]))
    assert "stance target 'intel' is not a known entity" in str(p)


def test_configured_stance_targets_replace_the_file_flags(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE)
    assert load_ruleset(tmp_path).stance_targets == ("nvidia",)
    rs = load_ruleset(tmp_path, config=RulesConfig(stance_targets=["deepseek"]))
    assert rs.stance_targets == ("deepseek",)


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    (p,) = problems(tmp_path / "absent")
    assert "rule directory not found" in str(p)
    (p,) = problems(tmp_path)
    assert "no *.toml rule files" in str(p)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE)
    (tmp_path / "latin.toml").write_bytes("# caf\xe9\n".encode("latin-1"))
    (p,) = problems(tmp_path)
    assert p.path == str(tmp_path / "latin.toml")
    assert "not UTF-8" in p.message


def test_lexicon_syntax_error_is_reported_with_its_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE)
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "lexicon" / "ko.toml").write_text("[cues\n", encoding="utf-8")
    (p,) = problems(tmp_path)
    assert p.path == str(tmp_path / "lexicon" / "ko.toml")
    assert "TOML syntax error" in p.message


def test_a_disabled_rule_is_validated_but_not_loaded(tmp_path: Path) -> None:
    write(tmp_path, RULE_HEAD + 'enabled = false\n[rule.when]\nall = ["nvidia"]\n')
    assert load_ruleset(tmp_path).rules == ()
    write(tmp_path, RULE_HEAD + 'enabled = false\n[rule.when]\nall = ["nvidiaa"]\n')
    assert "unknown entity" in str(problems(tmp_path)[0])
