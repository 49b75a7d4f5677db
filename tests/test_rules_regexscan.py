"""Rule patterns searched with a skip to where a match can start give exactly what
re.search gives: the same span, text and groups, or no match."""

from __future__ import annotations

import random
import re

import pytest

from monitor.core.regexscan import Searcher

PATTERNS = [
    r"(?<![\d.])(?:[5-9]|[1-9]\d)(?:\.\d+)?\s?(?:%|percent|퍼센트)",
    r"\b\d+(\.\d+)?\s?%",
    r"\bH\d{2,3}\b",
    r"(?:raises?|cuts?) (?:its )?guidance",
    r"(a|)b",
    r"(?<=a)b",
    r"^abc",
    r"엔비디아.{0,20}급락",
    r"[A-Z]\w+ Corp",
    r"x?",  # matches empty: searched plainly
    r"(?i:ab)c",  # scoped flags: searched plainly
    r"[^a]b",  # negated set: searched plainly
    r"\d+%",
    r"\d*%",
    r"(?>\d+)%",
    r"\d++%",
    r"\w+%",
    r"[a-c]+%b",
    r"(?:x|y)+ %",
    r"%",
    r"%abc",
    r"a.%",  # `.` before the anchor: its run is not worked out
    r"\d+%$",
    r"(?<=a)\d%",
    r"\b\d+ ?% (?=up)",
    r"k%",  # `k` also matches the Kelvin sign
    r"s+%",  # and `s` the long s
    r"(\d)%\1",  # a back-reference: not wrapped
    r"(?m)^\d%",  # inline global flags: not wrapped
    r"(?x) \d + %",  # verbose: not wrapped
    r"(?a)\d+%",
]

TEXTS = [
    "",
    "엔비디아 주가는 16.97% 급락했다.",
    "Nvidia fell 17 percent; AMD 3.5 %",
    "버전 1.5 and 4.2% and 80퍼센트",
    "h100 and H20 but not H2000",
    "The company raises its guidance, then cuts guidance.",
    "abc ab b cab",
    "Foo Corp and Bar Corp",
    "엔비디아 실적 발표 이후 주가가 급락",
    "1\n2% up k% K% \u212a% ſ% S%",
    "x " + "1" * 63 + "% " + "2" * 64 + "% " + "3" * 65 + "%",
    " " * 200 + "5 %",
    "٣% and 12 % up",
]


def _same(a: re.Match[str] | None, b: re.Match[str] | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.span(), a.group(0), a.groups()) == (b.span(), b.group(0), b.groups())


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_match_as_search(pattern: str) -> None:
    rx = re.compile(pattern, re.IGNORECASE)
    searcher = Searcher.of(rx)
    for text in TEXTS:
        assert _same(searcher.search(text), rx.search(text)), text


@pytest.mark.parametrize("flags", [re.IGNORECASE, 0])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_match_on_random_text(pattern: str, flags: int) -> None:
    rng = random.Random(pattern)
    pieces = [*"0123456789.% abABkKsSſ\u212a\n٣", "H", "percent", "퍼센트", "엔비디아", "급락"]
    pieces += [" Corp", "cuts ", "up", "x", "y", "1" * 70]
    rx = re.compile(pattern, flags)
    searcher = Searcher.of(rx)
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        assert _same(searcher.search(text), rx.search(text)), text


@pytest.mark.parametrize(
    ("pattern", "skips"),
    [(r"\b\d+%", True), (r"(?<!\d)[5-9]\d?%", True), (r"x?", False), (r"[^a]b", False)],
)
def test_skip_only_where_the_start_is_known(pattern: str, skips: bool) -> None:
    assert (Searcher.of(re.compile(pattern)).first is not None) is skips


@pytest.mark.parametrize(
    ("pattern", "wrapped"),
    [(r"\b\d+(\.\d+)?\s?%", True), (PATTERNS[0], True), (r"(\d)%\1", False), (r"(?x)\d%", False)],
)
def test_one_search_where_the_pattern_can_be_wrapped(pattern: str, wrapped: bool) -> None:
    assert (Searcher.of(re.compile(pattern, re.IGNORECASE)).skip is not None) is wrapped


@pytest.mark.parametrize(
    ("pattern", "char", "run"),
    [
        (r"\b\d+(\.\d+)?\s?%", "%", True),
        (r"%abc", "%", True),
        (r"a.%", "%", False),
        (r"엔비디아.{0,20}급락", "엔", True),
        (PATTERNS[0], None, False),  # `percent` has other cases
        (r"k%", "%", True),
    ],
)
def test_anchor_where_every_match_holds_a_caseless_character(
    pattern: str, char: str | None, run: bool
) -> None:
    searcher = Searcher.of(re.compile(pattern, re.IGNORECASE))
    assert searcher.anchor == char
    assert (searcher.before is not None) is run
