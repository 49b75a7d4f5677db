"""Types of the native stance kernel (`_stance_native.pyx`, built by setup.py)."""

from collections.abc import Mapping, Sequence
from typing import Any

EXPLAINER: int
SUPPLIER: int
VERSUS: int
DEBATE: int
COUNTER: int
ALTERNATIVE: int
DOUBT: int

class Plan:
    def __init__(
        self, lang: Any, weights: Any, record_type: type, company_role: int, driver_role: int
    ) -> None: ...

class Field:
    @property
    def flags(self) -> int: ...
    @property
    def special_flags(self) -> int: ...
    @property
    def has_specials(self) -> bool: ...
    def flags_within(self, spans: Sequence[Any]) -> int: ...
    def debate_sentences(self) -> int: ...

def scan(
    plan: Plan, text: str, sentence_starts: Sequence[int], extra_starts: Sequence[int]
) -> Field: ...
def records(
    plan: Plan,
    f: Field,
    part: str,
    mentions: Any,
    sentences: Sequence[Any],
    questions: tuple[Any, ...],
    modifier: float,
    roles: Mapping[str, int],
    out: list[Any],
) -> None: ...

class Weighing:
    def __init__(
        self,
        index: Any,
        weights: Any,
        cue_type: type,
        roles: tuple[int, int, int],
        names: tuple[str, str, str],
    ) -> None: ...

def tally(
    w: Weighing, records: tuple[Any, ...], own: frozenset[str], leads: bool, cues: list[Any] | None
) -> tuple[float, float, float, float, float, dict[tuple[str, int], float]]: ...

class Weighed: ...

def prepare(w: Weighing, records: tuple[Any, ...]) -> Weighed | None: ...
def tally_prepared(
    p: Weighed, own: frozenset[str], leads: bool, cues: list[Any] | None
) -> tuple[float, float, float, float, float, dict[tuple[str, int], float]]: ...
