"""fast_maker: frozen dataclass values built straight into their slots (natively where
setup.py built `monitor/core/_slots_native.pyx`), equal to the class's own."""

from __future__ import annotations

import dataclasses
import gc
import sys
from pathlib import Path

import pytest

from monitor.core import slots
from monitor.core.engine import _Scan
from monitor.core.models import Analysis, Article, Hit, RuleMatch, Stance, StanceLabel
from monitor.core.rules import Facts
from monitor.core.slots import fast_maker

CORE = Path(__file__).resolve().parents[1] / "monitor" / "core"
NATIVE = slots.Maker is not None


def test_the_native_maker_is_used_where_it_is_built() -> None:
    built = sorted(CORE.glob("_slots_native.*.so"))
    assert bool(built) == NATIVE
    if built:
        assert (CORE / "_slots_native.pyx").stat().st_mtime <= built[0].stat().st_mtime, (
            "monitor/core/_slots_native.pyx changed after its extension was built: "
            "run `pip install -e .` (or `make install`) again"
        )
        assert isinstance(fast_maker(Hit), slots.Maker)


def _article() -> Article:
    return Article(feed="f", item_id="a1", title="T", body="B", lang="en")


def test_made_values_equal_the_class_built_ones() -> None:
    article = _article()
    hit = Hit("nvidia", "Nvidia", "title", 0, 6, "Nvidia rises")
    match = RuleMatch("r1", "Title", "high", ("ops",), 60.0, ("all: x",))
    stance = Stance("nvidia", StanceLabel.BULLISH, 0.5, 0.7, ("Nvidia rises",))
    cases: list[tuple[type, tuple[object, ...]]] = [
        (Hit, ("nvidia", "Nvidia", "title", 0, 6, "Nvidia rises")),
        (RuleMatch, ("r1", "Title", "high", ("ops",), 60.0, ("all: x",))),
        (Stance, ("nvidia", StanceLabel.BULLISH, 0.5, 0.7, ("Nvidia rises",))),
        (Analysis, (article, ("nvidia",), (hit,), (match,), {"nvidia": stance})),
        (Facts, (article, "T", "B", {"nvidia": [hit]}, {}, {"nvidia": stance}, {})),
        (_Scan, (article, (hit,), None, ("nvidia",))),
    ]
    for cls, values in cases:
        made = fast_maker(cls)(*values)
        want = cls(*values)
        assert type(made) is cls
        assert made == want and repr(made) == repr(want)
        for f in dataclasses.fields(cls):
            assert getattr(made, f.name) is getattr(want, f.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, dataclasses.fields(cls)[0].name, None)
    assert hash(fast_maker(Hit)(*cases[0][1])) == hash(hit)


def test_missing_values_take_the_class_defaults() -> None:
    assert fast_maker(RuleMatch)("r1", "Title") == RuleMatch("r1", "Title")
    assert fast_maker(Stance)("nvidia", StanceLabel.NEUTRAL, 0.0) == Stance(
        "nvidia", StanceLabel.NEUTRAL, 0.0
    )


def test_made_values_hold_and_release_their_fields() -> None:
    value = "".join(["entity", str(len(sys.argv))])  # a fresh string, counted alone
    before = sys.getrefcount(value)
    make = fast_maker(Hit)
    made = [make(value, value, "body", 1, 2, value) for _ in range(100)]
    assert sys.getrefcount(value) == before + 300
    del made
    gc.collect()
    assert sys.getrefcount(value) == before


def test_classes_it_cannot_fill_get_their_own_constructor() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:  # no slots
        a: int

    assert fast_maker(Plain) is Plain
