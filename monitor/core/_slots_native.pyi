"""Types of the native slot filler (`_slots_native.pyx`, built by setup.py)."""

from collections.abc import Callable, Iterable
from typing import Any

class Maker:
    def __init__(self, cls: type, names: Iterable[str], other: Callable[..., Any]) -> None: ...
    def __call__(self, *values: Any) -> Any: ...
