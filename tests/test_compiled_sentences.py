"""The native sentence splitter (built by setup.py) against its Python source.

Where a C compiler was at hand, `pip install` builds `monitor/core/_sentences_native.pyx`
and `split_sentences` uses it; `_split_python` in monitor/core/sentences.py is the
reference it replaces. Every hit and every stance cue is placed by these cuts, so the
two must cut every text at the same places: the corpora, and random strings dense in
the characters the rules look at (marks, closers, Unicode whitespace, abbreviations in
mixed case, and the letters `re` matches case-insensitively to ASCII ones).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from monitor.core import sentences
from monitor.core.sentences import (
    Span,
    _headline_python,
    _split_python,
    split_headline,
    split_sentences,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "monitor" / "core" / "_sentences_native.pyx"
CORPORA = [
    REPO.parent / "shared" / "corpus" / "public.jsonl",
    *sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")),
]
NATIVE = sentences._splitter is not None
needs_native = pytest.mark.skipif(not NATIVE, reason="the splitter runs as Python here")


def test_the_native_splitter_is_used_where_it_is_built() -> None:
    # (that the extension is not older than its source: tests/test_compiled.py)
    assert bool(sorted(SOURCE.parent.glob("_sentences_native.*.so"))) == NATIVE


def _corpus_texts() -> list[str]:
    out: list[str] = []
    for path in CORPORA:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                out += [v for k, v in item.items() if k in ("title", "text", "body", "summary")]
    return [t for t in out if isinstance(t, str)]


@needs_native
def test_native_cuts_the_corpora_as_the_source_does() -> None:
    texts = _corpus_texts()
    assert len(texts) > 100
    for text in texts:
        assert split_sentences(text) == _split_python(text), text[:80]


_ALPHABET = [
    *".........!!??…。", *"\"'”’」』)]", *" \t\n\u3000\xa0\x1c\x85\u2028",
    *"usUSkKnNeEiIcCoOrRpPlLtTdDmMjJvVgGaAfFbBxXhHzZ",
    "ſ", "K", "İ", "ı", "_", "1", "9", "다", "가", "١", "²", "%", ",", "-",
    "Inc", "U.S", "No", "Corp", "e.g", "i.e", "Dr", "Sept", "C", "St",
]  # fmt: skip


@needs_native
def test_native_cuts_random_text_as_the_source_does() -> None:
    rng = random.Random(3)
    cuts = 0
    for _ in range(30000):
        text = "".join(rng.choices(_ALPHABET, k=rng.randint(0, 40)))
        got = split_sentences(text)
        assert got == _split_python(text), repr(text)
        cuts += len(got) > 1
    assert cuts > 5000  # the strings do end sentences


@needs_native
def test_native_cuts_headlines_as_the_source_does() -> None:
    titles = _corpus_texts()
    pieces = [*"…….;;--||  \t\u3000\xa0ab가?", "...", " - ", " | ", "…"]
    rng = random.Random(5)
    titles += ["".join(rng.choices(pieces, k=rng.randint(0, 25))) for _ in range(30000)]
    cut = 0
    for title in titles:
        got = split_headline(title)
        assert got == _headline_python(title), repr(title)
        cut += len(got) > 1
    assert cut > 5000
    title = "엔비디아 급등…SK하이닉스 - 삼성 | 분석; 결론...끝"
    assert [s.text for s in split_headline(title)] == [
        "엔비디아 급등", "SK하이닉스", "삼성", "분석", "결론", "끝",
    ]  # fmt: skip


@needs_native
def test_abbreviations_and_initials_do_not_end_a_sentence() -> None:
    text = "Shares of Nvidia Corp. rose. C.C. Wei spoke in the U.S. on Nov. 19! 주가는 올랐다. Why?"
    assert [s.text for s in split_sentences(text)] == [
        "Shares of Nvidia Corp. rose.",
        "C.C. Wei spoke in the U.S. on Nov. 19!",
        "주가는 올랐다.",
        "Why?",
    ]
    assert split_sentences("  Done.  ") == [Span(2, 7, "Done.")]
    # `re` matches the Kelvin sign to k and the long s to s, case-insensitively; the
    # abbreviations are only looked for where the two characters before the period,
    # lower-cased, end one ("ſ" stays "ſ", the Kelvin sign becomes "k")
    assert len(split_sentences("in the U.\u212a. Next")) == 1
    assert len(split_sentences("x \u017fept. Next")) == 1
    assert len(split_sentences("x u.\u017f. Next")) == 2


def test_the_letters_the_native_splitter_folds_are_those_re_folds() -> None:
    # Non-ASCII characters `re` matches to an ASCII letter under IGNORECASE: the native
    # splitter knows them by name, so a Python whose `re` folds others must fail here.
    everything = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    found = {
        ch: [a for a in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch(f"(?i){a}", ch)]
        for ch in re.findall("(?i)[a-z]", everything)
    }
    assert found == {"\u0130": ["i"], "\u0131": ["i"], "\u017f": ["s"], "\u212a": ["k"]}
    # and `str.lower` makes an ASCII character of only one of them
    assert [ch for ch in everything if ch.lower().isascii()] == ["\u212a"]


@needs_native
def test_spans_are_whole_span_values_that_are_freed_with_their_list() -> None:
    # The kernel fills Span values slot by slot (monitor/core/_tuples.pxi): each must be
    # a Span like one made in Python, hold its own references and give them all back.
    import gc
    import sys

    text = "엔비디아 주가가 급락했다. Nvidia shares fell! Why? (Analysts) said so. 끝"
    spans = split_sentences(text)
    assert spans == _split_python(text)
    assert all(type(s) is Span for s in spans)
    assert [s.text for s in spans] == [text[s.start : s.end] for s in spans]
    assert hash(tuple(spans)) == hash(tuple(_split_python(text)))
    gc.collect()
    before = sys.getrefcount(Span), sys.getrefcount(text)
    for _ in range(2000):
        split_sentences(text)
        split_headline("“값비싼 엔비디아 AI칩 필요한가?” vs “고성능 칩 수요 더 커질 것”")
    gc.collect()
    assert (sys.getrefcount(Span), sys.getrefcount(text)) == before
