"""Stance toward one target entity: bullish, bearish, mixed or neutral, with evidence.

Contract used by the engine (`monitor.core.engine`):

    assess(article, target, hits, lexicon, thresholds) -> Stance

`hits` are the entity hits of the whole article (any entity); `lexicon` is the
compiled cue lexicon from `rules/lexicon/*.toml`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.core.models import Article, Hit, Stance, StanceLabel


@dataclass(frozen=True, slots=True)
class StanceThresholds:
    bullish: float = 0.2
    bearish: float = -0.2
    mixed_min_each: float = 0.25


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Compiled cue lexicon (placeholder: no cues yet)."""


def compile_lexicon(docs: Mapping[str, Mapping[str, Any]]) -> Lexicon:
    """Build a Lexicon from parsed lexicon TOML documents keyed by their file path.

    Raises RuleError naming the file (and cue) for anything invalid.
    """
    return Lexicon()


def assess(
    article: Article,
    target: str,
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
) -> Stance:
    return Stance(target=target, label=StanceLabel.NEUTRAL, score=0.0)
