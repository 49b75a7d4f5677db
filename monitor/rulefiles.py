"""Reads a rule directory from disk and compiles it into a RuleSet.

A rule directory holds `*.toml` files with `[[entity]]` and `[[rule]]` tables and
a `lexicon/` folder of stance cue files. Every problem, in any file, is collected
and raised together as `RuleFileErrors` (each a `RuleError` naming file, line,
rule and field). `default_rules_dir()` is the rule pack that ships inside the
package; `resolve_rules_dir` picks the directory a command should use.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from monitor.config import RulesConfig
from monitor.core.engine import BROKEN_ENTITY, RuleSet, compile_ruleset
from monitor.core.errors import RuleError
from monitor.core.rules import RuleFileErrors, parse_sources
from monitor.core.stance import Lexicon, StanceThresholds, compile_lexicon
from monitor.logs import get_logger

log = get_logger(__name__)

LEXICON_DIR = "lexicon"


def default_rules_dir() -> Path:
    """The bundled rule pack (a copy of the repository's `rules/`)."""
    return Path(__file__).resolve().parent / "defaults" / "rules"


def resolve_rules_dir(
    configured: str | Path | None,
    config_path: str | Path | None = None,
    override: str | Path | None = None,
) -> Path:
    """The rule directory every command uses: `override` (`--rules`) as given; else
    `configured` (`[rules] dir`) beside the config file, then in the working directory;
    the bundled pack when nothing was configured or the default `rules` is absent."""
    if override:
        return Path(override)
    path = Path(configured) if configured else Path(RulesConfig().dir)
    if not path.is_absolute() and config_path is not None:
        beside = Path(config_path).resolve().parent / path
        if beside.is_dir():
            return beside
    if path.is_dir():
        return path
    if configured is None or str(configured) == RulesConfig().dir:
        return default_rules_dir()
    return path


def rule_files(directory: Path) -> list[Path]:
    """The rule files of `directory` (not its lexicon), in name order."""
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def lexicon_files(directory: Path) -> list[Path]:
    return sorted(p for p in (directory / LEXICON_DIR).glob("*.toml") if p.is_file())


def _read(path: Path, errors: list[RuleError]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else f"not UTF-8 ({e.reason})"
        errors.append(RuleError(f"cannot read: {why}", path=str(path)))
        return None


def load_lexicon(directory: Path, errors: list[RuleError]) -> Lexicon:
    """Parse `lexicon/*.toml` and compile it; problems go to `errors`."""
    docs: dict[str, Mapping[str, Any]] = {}
    for path in lexicon_files(directory):
        text = _read(path, errors)
        if text is None:
            continue
        try:
            docs[str(path)] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            errors.append(RuleError(f"TOML syntax error: {e}", path=str(path)))
    try:
        return compile_lexicon(docs)
    except RuleFileErrors as e:
        errors.extend(e.errors)
    except RuleError as e:
        errors.append(e)
    return compile_lexicon({})


def thresholds_of(config: RulesConfig) -> StanceThresholds:
    return StanceThresholds(
        bullish=config.bullish_threshold,
        bearish=config.bearish_threshold,
        mixed_min_each=config.mixed_min_each,
    )


def load_ruleset(
    directory: str | Path,
    config: RulesConfig | None = None,
    notifiers: Iterable[str] | None = None,
) -> RuleSet:
    """Read, validate and compile a rule directory; RuleFileErrors lists every problem."""
    root = Path(directory)
    errors: list[RuleError] = []
    if not root.is_dir():
        raise RuleFileErrors([RuleError("rule directory not found", path=str(root))])
    texts: dict[str, str] = {}
    for path in rule_files(root):
        text = _read(path, errors)
        if text is not None:
            texts[str(path)] = text
    if not texts and not errors:
        errors.append(RuleError("no *.toml rule files", path=str(root)))
    sources, parse_errors = parse_sources(texts)
    errors += parse_errors
    lexicon = load_lexicon(root, errors)
    cfg = config or RulesConfig()
    try:
        ruleset = compile_ruleset(
            sources,
            texts=texts,
            lexicon=lexicon,
            stance_targets=cfg.stance_targets,
            thresholds=thresholds_of(cfg),
            notifiers=notifiers,
        )
    except RuleFileErrors as e:
        # With schema errors already listed, "entity failed validation" says nothing new.
        errors += [x for x in e.errors if not (parse_errors and x.message == BROKEN_ENTITY)]
        ruleset = None
    if errors or ruleset is None:
        raise RuleFileErrors(errors)
    log.debug("rules_loaded", dir=str(root), summary=ruleset.summary())
    return ruleset


def load_rules(directory: str | Path, config: RulesConfig | None = None) -> RuleSet:
    """Same as `load_ruleset` (the name the daemon uses)."""
    return load_ruleset(directory, config)
