"""Building frozen, slotted dataclass values at the engine's pace.

`fast_maker(cls)` is `frozen.maker(cls)` (a function `make(field1, field2, ...)` equal
to `cls(field1, field2, ...)`), done by the native `_slots_native.Maker` where setup.py
could build it: that one stores each value straight into its slot instead of calling
the slot's descriptor, a few times faster again for the tens of hits and matches an
article yields. Where it is not built, or `cls` is not a plain frozen slotted
dataclass, `frozen.maker` does the work. tests/test_slots.py compares the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from monitor.core.frozen import maker

try:  # the slots filled in C, where setup.py could compile it
    from monitor.core._slots_native import Maker
except ImportError:  # pragma: no cover - frozen.maker does the same
    Maker = None  # type: ignore[assignment,misc]

T = TypeVar("T")


def fast_maker(cls: type[T]) -> Callable[..., T]:
    """A function `make(field1, field2, ...)` equivalent to `cls(field1, field2, ...)`;
    with fewer values than fields, the others take the class's defaults."""
    made = maker(cls)
    if Maker is None or made is cls:
        return made
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # maker checked
    try:
        native: Callable[..., T] = Maker(cls, names, made)
    except ValueError:  # a field that is not a plain slot of the class itself
        return made
    return native
