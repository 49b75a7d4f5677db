"""Sentence and headline splitting for Korean and English news text."""

from __future__ import annotations

import pytest

from monitor.core.sentences import split_headline, split_sentences

SENTENCES = [
    (
        "korean declaratives",
        "엔비디아 주가가 3% 올랐다. 시장은 실적을 기다린다. 발표는 다음 주다.",
        ["엔비디아 주가가 3% 올랐다.", "시장은 실적을 기다린다.", "발표는 다음 주다."],
    ),
    (
        "decimals do not end a sentence",
        "엔비디아 주가는 16.97% 급락했다. 나스닥은 3.1% 내렸다.",
        ["엔비디아 주가는 16.97% 급락했다.", "나스닥은 3.1% 내렸다."],
    ),
    (
        "abbreviations do not end a sentence",
        "The U.S. Commerce Department issued a rule on Monday. Nvidia Corp. said it would comply.",
        [
            "The U.S. Commerce Department issued a rule on Monday.",
            "Nvidia Corp. said it would comply.",
        ],
    ),
    (
        "initials do not end a sentence",
        "TSMC chairman C.C. Wei spoke on Thursday. He kept the forecast.",
        ["TSMC chairman C.C. Wei spoke on Thursday.", "He kept the forecast."],
    ),
    (
        "closing quotes stay with their sentence",
        "그는 “수요가 꺾이지 않았다.” 라고 말했다. 주가는 올랐다.",
        ["그는 “수요가 꺾이지 않았다.”", "라고 말했다.", "주가는 올랐다."],
    ),
    (
        "questions and exclamations",
        "Is the AI trade over? Not yet! Shares rose 2% on Friday.",
        ["Is the AI trade over?", "Not yet!", "Shares rose 2% on Friday."],
    ),
    (
        "a run of marks ends once; marks inside a word do not end",
        "Sold out?! Demand is huge... Analysts agree.",
        ["Sold out?!", "Demand is huge...", "Analysts agree."],
    ),
    (
        "a period before a lower-case word does not end",
        "The stock rose 2 pct. on Friday and kept going. Then it fell.",
        ["The stock rose 2 pct. on Friday and kept going.", "Then it fell."],
    ),
    (
        "an abbreviation after a bracket still counts; a longer word does not",
        "Revenue was (approx. $30 billion) high. Sales hit a record at Sumsung Inc. Then more.",
        [
            "Revenue was (approx. $30 billion) high.",
            "Sales hit a record at Sumsung Inc. Then more.",
        ],
    ),
    (
        "a period inside a word with no space after does not end",
        "Visit nvidia.com for details. 주가는 3.5% 올랐다.",
        ["Visit nvidia.com for details.", "주가는 3.5% 올랐다."],
    ),
    (
        "titles and company suffixes",
        "Mr. Kim said so. Samsung Electronics Co. agreed. Apple Inc. rose!",
        ["Mr. Kim said so.", "Samsung Electronics Co. agreed.", "Apple Inc. rose!"],
    ),
    (
        "a closing quote after the period",
        'He said "it is over." Then left',
        ['He said "it is over."', "Then left"],
    ),
    (
        "an ideographic full stop ends a sentence",
        "엔비디아가 올랐다。 삼성도 올랐다.",
        ["엔비디아가 올랐다。", "삼성도 올랐다."],
    ),
    ("no final punctuation", "Nvidia shares rose", ["Nvidia shares rose"]),
    ("empty", "", []),
]


@pytest.mark.parametrize(
    ("text", "want"), [(t, w) for _, t, w in SENTENCES], ids=[n for n, _, _ in SENTENCES]
)
def test_split_sentences(text: str, want: list[str]) -> None:
    spans = split_sentences(text)
    assert [s.text for s in spans] == want
    for s in spans:
        assert text[s.start : s.end] == s.text


HEADLINES = [
    (
        "ellipsis",
        "엔비디아 '블랙웰 판매 폭발'…매출 기대 웃돌아",
        ["엔비디아 '블랙웰 판매 폭발'", "매출 기대 웃돌아"],
    ),
    (
        "semicolon",
        "U.S. caps AI chip exports; Nvidia objects",
        ["U.S. caps AI chip exports", "Nvidia objects"],
    ),
    (
        "dash",
        "Nvidia slides - Meta weighs rival chips",
        ["Nvidia slides", "Meta weighs rival chips"],
    ),
    ("one clause", "Nvidia beats estimates", ["Nvidia beats estimates"]),
]


@pytest.mark.parametrize(
    ("title", "want"), [(t, w) for _, t, w in HEADLINES], ids=[n for n, _, _ in HEADLINES]
)
def test_split_headline(title: str, want: list[str]) -> None:
    spans = split_headline(title)
    assert [s.text for s in spans] == want
    for s in spans:
        assert title[s.start : s.end] == s.text


ENDINGS = ("?", "까", "인가", "되나")


@pytest.mark.parametrize(
    ("part", "asks"),
    [
        ("엔비디아 독주 흔들리나?", True),
        ("엔비디아 AI칩 필요한가", False),  # ends in 한가: no listed ending (인가 is)
        ("엔비디아가 답인가", True),
        ("HBM 수요 더 커질까", True),
        ("“HBM 수요 더 커질까”", True),  # closing quotes and brackets are not the ending
        ("HBM 수요 더 커질까.)", True),
        ("반도체 회복 되나 ", True),
        ("엔비디아 주가 급락", False),
        ("Is Nvidia a buy", False),  # English asks with "?" only
        ("WILL HBM DEMAND LAST?", True),
        ("", False),
    ],
)
def test_a_headline_part_asks_by_its_mark_or_its_ending(part: str, asks: bool) -> None:
    from monitor.core.stance import _asks

    assert _asks(part, ENDINGS) is asks
