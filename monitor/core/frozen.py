"""Fast construction of frozen, slotted dataclass values.

A frozen dataclass's generated `__init__` sets each field through
`object.__setattr__`, about a microsecond per value; the engine builds tens of
hits and rule matches for every article. `maker(cls)` returns a function that
takes the fields positionally and fills the slots directly: the same value
(equal, same hash), several times faster. Classes it cannot build that way (not
slotted, not frozen, a `__post_init__`, keyword-only fields or ones left out of
`__init__`) get their own constructor back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_UNSET = object()


def maker(cls: type[T]) -> Callable[..., T]:
    """A function `make(field1, field2, ...)` equivalent to `cls(field1, field2, ...)`
    (positional arguments; fields left out take the class's defaults)."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        return cls
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cls)
    if (
        params is None
        or not params.frozen
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.kw_only or f.name.startswith("_mk_") for f in fields)
    ):
        return cls
    scope: dict[str, Any] = {"_mk_new": object.__new__, "_mk_cls": cls, "_mk_unset": _UNSET}
    signature: list[str] = []
    body = ["    _mk_v = _mk_new(_mk_cls)"]
    for i, f in enumerate(fields):
        # Defaults as in the class, so that a field added later with a default
        # does not break callers that pass the earlier ones.
        if f.default is not dataclasses.MISSING:
            scope[f"_mk_default{i}"] = f.default
            signature.append(f"{f.name}=_mk_default{i}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_mk_factory{i}"] = f.default_factory
            signature.append(f"{f.name}=_mk_unset")
            body.append(f"    if {f.name} is _mk_unset:\n        {f.name} = _mk_factory{i}()")
        else:
            signature.append(f.name)
        scope[f"_mk_set{i}"] = cls.__dict__[f.name].__set__
        body.append(f"    _mk_set{i}(_mk_v, {f.name})")
    body.append("    return _mk_v")
    source = f"def make({', '.join(signature)}):\n" + "\n".join(body) + "\n"
    exec(source, scope)  # generated from the class's own field names only
    made: Callable[..., T] = scope["make"]
    made.__doc__ = f"Build a {cls.__name__} from all of its fields, in order."
    return made
