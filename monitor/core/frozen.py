"""Fast construction of frozen, slotted dataclass values.

A frozen dataclass's generated `__init__` sets each field through
`object.__setattr__`, about a microsecond per value; the engine builds tens of
hits and rule matches for every article. `maker(cls)` returns a function that
takes every field positionally and fills the slots directly: the same value
(equal, same hash), several times faster. Classes it cannot build that way (not
slotted, not frozen, a `__post_init__`, fields left out of `__init__`) get their
own constructor back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A function `make(field1, field2, ...)` equivalent to `cls(field1, field2, ...)`
    with every field given."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        return cls
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cls)
    if (
        params is None
        or not params.frozen
        or hasattr(cls, "__post_init__")
        or any(not f.init for f in fields)
    ):
        return cls
    names = [f.name for f in fields]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    body = ["    v = new(cls)"]
    for i, name in enumerate(names):
        scope[f"set{i}"] = cls.__dict__[name].__set__
        body.append(f"    set{i}(v, {name})")
    body.append("    return v")
    source = f"def make({', '.join(names)}):\n" + "\n".join(body) + "\n"
    exec(source, scope)  # generated from the class's own field names only
    made: Callable[..., T] = scope["make"]
    made.__doc__ = f"Build a {cls.__name__} from all of its fields, in order."
    return made
