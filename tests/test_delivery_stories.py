"""Story clustering: rewrites of one story are one story; new figures are a new one."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.core.models import SourceRef
from monitor.core.stories import (
    TitleIndex,
    containment,
    extract_figures,
    find_story,
    new_story,
    normalise_title,
    strip_title,
)
from tests.fakes.alerts import T0


@pytest.mark.parametrize(
    ("title", "stripped"),
    [
        ("[속보] 엔비디아 17% 급락", "엔비디아 17% 급락"),
        ("[종합2보] 엔비디아 17% 급락…딥시크 충격", "엔비디아 17% 급락...딥시크 충격"),  # NFKC
        ("(종합) [단독] 삼성전자 HBM 납품", "삼성전자 HBM 납품"),
        ("【속보】 SK하이닉스 신고가", "SK하이닉스 신고가"),
        ("딥시크 충격에 엔비디아 주가 급락 - 매일경제", "딥시크 충격에 엔비디아 주가 급락"),
        (
            "Nvidia shares plunge as DeepSeek rattles AI trade - Reuters",
            "Nvidia shares plunge as DeepSeek rattles AI trade",
        ),
        ("Breaking: TSMC raises capex", "TSMC raises capex"),
        ("엔비디아-딥시크 논쟁 - 연합", "엔비디아-딥시크 논쟁"),
        ("엔비디아 - 딥시크", "엔비디아 - 딥시크"),  # too short to carry an outlet
    ],
)
def test_wire_prefixes_and_outlet_suffixes_are_stripped(title: str, stripped: str) -> None:
    assert strip_title(title) == stripped


@pytest.mark.parametrize(
    ("title", "figures"),
    [
        ("[종합2보] 엔비디아 16.97% 급락", ("16.97%",)),
        ("H100 대신 H800으로 560만 달러", ("560",)),
        ("Nvidia loses $589,000,000,000 in a day", ("589000000000",)),
        ("TSMC Q3 capex steady", ()),
        ("３분기 실적 ５％ 증가", ("3", "5%")),  # full-width digits fold to ASCII
    ],
)
def test_figures_are_numbers_not_model_names(title: str, figures: tuple[str, ...]) -> None:
    assert extract_figures(title) == figures


def ref(feed: str, title: str) -> SourceRef:
    return SourceRef(feed=feed, source=feed, title=title, link=f"https://x/{feed}", lang="ko")


WIRE = "[속보] 딥시크 충격에 엔비디아 주가 급락"


@pytest.mark.parametrize(
    ("later", "same"),
    [
        ("[종합] 딥시크 충격에 엔비디아 주가 급락…AI 칩 수요 논란", True),
        ("딥시크 충격에 엔비디아 주가 급락 - 한국경제", True),
        ("딥시크 충격에 엔비디아 주가 급락", True),
        ("딥시크 충격에 엔비디아 주가 급락했다", True),
        ("엔비디아 주가 급락", True),  # a shorter headline fully contained in the story
        ("딥시크 충격에도 SK하이닉스 주가 반등", False),
        ('메타 "AI 설비투자 줄이지 않겠다"', False),
        ("삼성전자 HBM3E 엔비디아 품질 테스트 통과", False),
    ],
)
def test_rewrites_join_the_story_and_neighbours_do_not(later: str, same: bool) -> None:
    story = new_story(WIRE, T0, ref("yonhap", WIRE))
    found = find_story(later, [story], T0 + timedelta(minutes=20), window_s=36 * 3600)
    assert (found is not None) is same


def test_different_figures_make_a_different_story() -> None:
    first = new_story("엔비디아 주가 17% 급락", T0, ref("a", "엔비디아 주가 17% 급락"))
    assert find_story("[종합] 엔비디아 주가 17% 급락", [first], T0, 3600) is first
    assert find_story("엔비디아 주가 5% 급락", [first], T0, 3600) is None
    # a copy that states no figure is not evidence of a new event
    assert find_story("엔비디아 주가 급락", [first], T0, 3600) is first


def test_stories_older_than_the_window_are_not_matched() -> None:
    story = new_story(WIRE, T0, ref("yonhap", WIRE))
    assert find_story(WIRE, [story], T0 + timedelta(hours=35), 36 * 3600) is story
    assert find_story(WIRE, [story], T0 + timedelta(hours=37), 36 * 3600) is None


def test_story_key_is_deterministic_and_sources_are_not_repeated() -> None:
    a = new_story(WIRE, T0, ref("yonhap", WIRE))
    b = new_story(WIRE, T0 + timedelta(hours=1), ref("other", WIRE))
    assert a.key == b.key and a.key.startswith("story:")
    grown = a.with_source(ref("hankyung", "x")).with_source(ref("hankyung", "x"))
    assert [s.feed for s in grown.sources] == ["yonhap", "hankyung"]


def test_containment_edge_cases() -> None:
    assert containment("", "abc") == 0.0
    assert containment(normalise_title("[속보] A B"), normalise_title("ab")) == 1.0


@pytest.mark.parametrize(
    ("english", "hours", "same"),
    [
        ("Nvidia shares close down 16.97% as DeepSeek rattles AI trade", 2, True),
        ("Nvidia closes down 16.97% in record $589 billion wipeout - Reuters", 5, True),
        ("Nvidia shares close down 16.97% as DeepSeek rattles AI trade", 7, False),  # too late
        ("Nvidia falls 17% on DeepSeek fears", 1, False),  # a round figure names no event
        ("TSMC rises 2.35% on AI demand", 1, False),
    ],
)
def test_a_precise_percentage_links_stories_across_languages(
    english: str, hours: float, same: bool
) -> None:
    korean = "[속보] 엔비디아 16.97% 폭락…딥시크 충격"
    story = new_story(korean, T0, SourceRef("yna", "연합뉴스", korean, "https://yna/1", "ko"))
    found = find_story(english, [story], T0 + timedelta(hours=hours), 36 * 3600, lang="en")
    assert (found is story) is same
    # within one language only the title decides: a shared figure is not enough
    assert find_story("삼성전자 주가 16.97% 급등", [story], T0, 36 * 3600, lang="ko") is None


CORPORA = sorted((Path(__file__).resolve().parent / "data" / "corpus").glob("*.jsonl"))


@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.stem)
def test_corpus_titles_never_merge_and_their_rewrites_always_do(corpus: Path) -> None:
    """80 distinct labelled stories: no two are one story, every rewrite joins its own."""
    items = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert len(items) == 80
    stories = [
        new_story(
            it["title"], T0, SourceRef("f", it.get("source", ""), it["title"], "", it["lang"])
        )
        for it in items
    ]
    merged = [
        (a["id"], b["id"])
        for a, story in zip(items, stories, strict=True)
        for b in items
        if a is not b and find_story(b["title"], [story], T0, 36 * 3600, lang=b["lang"]) is story
    ]
    assert merged == []
    for it, story in zip(items, stories, strict=True):
        title, outlet = it["title"], it.get("source", "X")
        for rewrite in (f"[종합] {title}", f"{title} - {outlet}", f"[속보] {title}"):
            assert find_story(rewrite, [story], T0, 36 * 3600, lang=it["lang"]) is story, rewrite


def test_the_title_index_changes_no_match_and_no_preference() -> None:
    """find_story with a TitleIndex returns exactly what the plain scan returns:
    same story, same preference among equals, stories left out of the index still
    compared, removed ones compared the slow way again."""
    rng = random.Random(3)
    words = [
        "엔비디아",
        "주가",
        "급락",
        "딥시크",
        "충격",
        "AI",
        "반도체",
        "투자",
        "심리",
        "삼성전자",
        "SK하이닉스",
        "HBM",
        "공급",
        "수출",
        "통제",
        "Nvidia",
        "shares",
        "plunge",
        "export",
        "curbs",
        "TSMC",
        "capex",
        "17%",
        "5%",
        "16.97%",
        "3.5%",
        "[속보]",
    ]
    stories = []
    for i in range(600):
        title = " ".join(rng.choices(words, k=rng.randint(1, 7)))
        ref = SourceRef("f", "s", title, f"https://x/{i}", rng.choice(["ko", "en"]))
        stories.append(new_story(title, T0 - timedelta(hours=rng.uniform(0, 40)), ref))
    index = TitleIndex()
    for story in stories:
        if rng.random() < 0.9:  # a few are never indexed
            index.add(story)
    gone = rng.sample(stories, 150)
    for story in gone:
        index.discard(story.key)  # dropped from the index: compared the slow way again
    compared = 0
    for _ in range(1500):
        title = " ".join(rng.choices(words, k=rng.randint(1, 7)))
        lang = rng.choice(["ko", "en", None])
        plain = find_story(title, stories, T0, 36 * 3600, lang=lang)
        fast = find_story(title, stories, T0, 36 * 3600, lang=lang, index=index)
        assert fast is plain, title
        compared += plain is not None
    assert compared > 300  # the titles do find stories, often


def test_the_title_index_rebuilds_itself_after_many_removals() -> None:
    index = TitleIndex()
    stories = [
        new_story(f"엔비디아 주가 {i}% 급락", T0, SourceRef("f", "s", "t", f"l{i}"))
        for i in range(3000)
    ]
    for story in stories:
        index.add(story)
    for story in stories[:2500]:
        index.discard(story.key)
    assert len(index) == 500 and stories[2600].key in index and stories[0].key not in index
    found = find_story("엔비디아 주가 2700% 급락", stories[2500:], T0, 3600, index=index)
    assert found is stories[2700]


def test_the_title_index_holds_exactly_the_stories_it_is_told_to_retain() -> None:
    stories = [
        new_story(f"TSMC 설비투자 {i}조", T0, SourceRef("f", "s", "t", f"l{i}")) for i in range(50)
    ]
    index = TitleIndex()
    index.retain({s.key: s for s in stories[:30]})
    index.retain({s.key: s for s in stories[20:50]})
    assert index.keys() == {s.key for s in stories[20:50]}
    assert find_story("TSMC 설비투자 25조", stories, T0, 3600, index=index) is stories[25]
    assert (
        find_story("TSMC 설비투자 5조", stories, T0, 3600, index=index) is stories[5]
    )  # unindexed
