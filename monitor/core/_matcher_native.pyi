"""Types of the native matcher kernel (`_matcher_native.pyx`, built by setup.py)."""

from collections.abc import Callable, Sequence, Set
from typing import Any

_Hit = tuple[int, int, str, int, str]  # (start, end, entity, guard group, alias)
_TermHits = dict[str, list[tuple[Any, int, int]]]  # term key -> (field, start, end)

class Kernel:
    def __init__(
        self,
        automaton: Any,
        keys: Sequence[str],
        payloads: Sequence[tuple[Any, ...]],
        groups: Sequence[Any],
        guarded: Set[int],
        fold: Callable[[str], str],
        kinds: tuple[int, int, int, int, int],
        edges: tuple[int, int, int],
    ) -> None: ...
    def find_by_field(self, title: str, body: str) -> tuple[list[_Hit], list[_Hit], _TermHits]: ...
    def entities(self, title: str, body: str) -> tuple[str, ...]: ...

def lower(text: str) -> str: ...
