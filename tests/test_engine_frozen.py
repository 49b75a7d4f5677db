"""maker(): the fast constructor builds the same values as the dataclass's own."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from monitor.core.frozen import maker
from monitor.core.models import Hit, RuleMatch


@dataclass(frozen=True)
class _NoSlots:
    a: int


@dataclass(slots=True)
class _NotFrozen:
    a: int


@dataclass(frozen=True, slots=True)
class _PostInit:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class _Derived:
    a: int
    b: int = field(init=False, default=0)


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (Hit, ("nvidia", "엔비디아", "body", 3, 7, "엔비디아가 올랐다.")),
        (RuleMatch, ("r1", "Title", "warning", ("desk",), 60.0, ("all: x",))),
    ],
)
def test_made_value_equals_constructed_value(cls: type, args: tuple[object, ...]) -> None:
    made: object = maker(cls)(*args)
    built: object = cls(*args)
    assert type(made) is cls
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)


def test_made_value_stays_frozen() -> None:
    hit = maker(Hit)("nvidia", "Nvidia", "title", 0, 6, "Nvidia rose")
    with pytest.raises(FrozenInstanceError):
        hit.start = 1  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class _Defaults:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)


@pytest.mark.parametrize("args", [(1,), (1, "x"), (1, "x", [2])])
def test_fields_left_out_take_their_defaults(args: tuple[object, ...]) -> None:
    made: object = maker(_Defaults)(*args)
    assert made == _Defaults(*args)  # type: ignore[arg-type]


def test_each_made_value_gets_its_own_default_factory_value() -> None:
    make = maker(_Defaults)
    first, second = make(1), make(2)
    assert first.c == [] and first.c is not second.c


@pytest.mark.parametrize("cls", [_NoSlots, _NotFrozen, _PostInit, _Derived])
def test_classes_it_cannot_build_get_their_own_constructor(cls: type) -> None:
    assert maker(cls) is cls
