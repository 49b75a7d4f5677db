"""The matcher: normalisation, boundaries, spacing, case, excludes and context guards.

Two tables: the bundled rule pack on real-looking Korean and English phrases,
and a small hand-built matcher for each rule of the matcher in isolation.
"""

from __future__ import annotations

import pytest

from monitor.core.engine import RuleSet, analyze, match_only
from monitor.core.matcher import AliasSpec, Matcher, build_matcher, fold, normalize_text
from monitor.core.models import Article
from monitor.rulefiles import default_rules_dir, load_ruleset


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_ruleset(default_rules_dir())


def entities(rs: RuleSet, title: str, body: str = "") -> tuple[str, ...]:
    return match_only(rs, Article(feed="t", item_id="1", title=title, body=body))


# (text, entity, expected): the bundled pack, both languages.
PACK_CASES = [
    # Hangul aliases take any particle or suffix on the right ...
    ("엔비디아의 주가가 올랐다", "nvidia", True),
    ("딥시크가 새 모델을 공개했다", "deepseek", True),
    ("딥시크발 충격이 이어졌다", "deepseek", True),
    ("하이닉스株 강세", "sk_hynix", True),
    ("엔비디아로부터 칩을 공급받았다", "nvidia", True),
    ("오픈AI가 새 모델을 냈다", "openai", True),
    # ... but need a non-Hangul character (or the start) on the left.
    ("게임메타 플랫폼 출시", "meta", False),
    # Spaces inside an alias are optional, elsewhere they are not.
    ("SK하이닉스 주가", "sk_hynix", True),
    ("SK 하이닉스 주가", "sk_hynix", True),
    ("범용 인공지능 시대가 온다", "agi", True),
    ("범용인공지능 시대가 온다", "agi", True),
    ("엔비 디아 라는 가게", "nvidia", False),
    ("Deep Seek released a model", "deepseek", True),
    # ASCII aliases need a non-alphanumeric on both sides.
    ("H20 chips for China", "h20", True),
    ("H200 chips for China", "h20", False),
    ("엔비디아 H20의 판매", "h20", True),
    ("엔비디아 AI 칩 H100을 샀다", "h100", True),
    ("Meta bought 350,000 Nvidia H100s", "h100", True),
    ("a MAGIC trick at the show", "agi", False),
    ("OpenAI says AGI is near", "agi", True),
    ("agile teams ship faster", "agi", False),
    ("NVIDIA and nvidia and Nvidia", "nvidia", True),
    ("$NVDA fell 3%", "nvidia", True),
    ("nvda lowercase is not the ticker", "nvidia", False),
    # Tickers.
    ("SK하이닉스(000660) 급락", "sk_hynix", True),
    ("종목코드 005930 강세", "samsung_electronics", True),
    ("주문번호 1000660 확인", "sk_hynix", False),
    # Excludes.
    ("메타버스 플랫폼이 인기를 끌었다", "meta", False),
    ("메타분석 결과 커피는 건강에 좋다", "meta", False),
    ("메타 분석 결과", "meta", False),
    ("메타가 AI 투자를 늘렸다", "meta", True),
    ("A meta-analysis of 17 studies", "meta", False),
    ("Meta-analysis links steps to health", "meta", False),
    ("Meta Platforms raised its outlook", "meta", True),
    ("삼성바이오로직스가 수주했다", "samsung_electronics", False),
    ("삼성전기 실적 발표", "samsung_electronics", False),
    ("삼성전자 HBM 공급", "samsung_electronics", True),
    ("강남구 삼성동의 한 식당에서 반도체 업계 모임", "samsung_electronics", False),
    ("Samsung Biologics signed a deal", "samsung_electronics", False),
    ("Samsung Electronics shares rose", "samsung_electronics", True),
    ("Samsung's HBM3E chips passed Nvidia tests", "samsung_electronics", True),
    ("Samsung Lions pitcher wins again", "samsung_electronics", False),
    ("If you use Microsoft Excel at work", "microsoft", False),
    ("Microsoft raised capex", "microsoft", True),
    ("투자자들이 몰렸다", "capex", False),
    ("투자심리가 위축됐다", "capex", False),
    # Context requirements.
    ("현대차 포터는 해외에서 H100으로 팔린다. 중고 트럭 수출이 늘었다.", "h100", False),
    ("Hyundai's H100 van sells well in Central Asia", "h100", False),
    ("The H100 GPU draws 700W", "h100", True),
    ("Adjusted gross income, or AGI, is your income minus adjustments", "agi", False),
    ("MS와 메타 등 빅테크", "microsoft", True),
    ("다발성경화증(MS) 환자 대상 임상", "microsoft", False),
    ("response time fell to 30 ms", "microsoft", False),
    ("pitcher Blackwell struck out nine over six innings", "blackwell", False),
    ("Nvidia's Blackwell ramp", "blackwell", True),
    ("SK그룹 회장이 방한했다", "sk_hynix", False),
    ("데이터센터를 짓기 위해 20조원을 투자하기로 했다", "capex", True),
    ("Microsoft plans to spend $80 billion on AI data centers", "capex", True),
    ("could temper data center spending", "capex", False),
    ("Investing in AI infrastructure stocks is popular", "capex", False),
    ("AI 인프라 관련주에 투자자금이 몰렸다", "capex", False),
    ("Amazon will invest $100 billion in AI infrastructure", "capex", True),
    ("메타가 AI 인프라에 650억달러를 투자한다", "capex", True),
    ("Amazon expects to spend about $100 billion this year, mostly on AI.", "capex", True),
    ("SoftBank will invest $2 billion in AI startup Mistral", "capex", False),
    ("Microsoft's capital outlays rose 50%", "capex", True),
    ("The Commerce Department's BIS issued new license rules", "export_controls", True),
    ("BIS data show central bank gold buying", "export_controls", False),
    ("미 상무부 산업안보국이 새 규정을 발표했다", "export_controls", True),
    ("U.S. export controls on chips", "export_controls", True),
    ("엔비디아 H20 대중 수출 허용", "export_controls", True),
    ("중고 트럭 수출이 늘었다", "export_controls", False),
]


@pytest.mark.parametrize(("text", "entity", "expected"), PACK_CASES)
def test_pack_boundaries(pack: RuleSet, text: str, entity: str, expected: bool) -> None:
    assert (entity in entities(pack, text)) is expected


def test_full_width_text_is_normalised(pack: RuleSet) -> None:
    assert "h100" in entities(pack, "엔비디아 Ｈ１００ GPU")
    assert normalize_text("Ｈ１００\xa0 GPU\n\n칩") == "H100 GPU 칩"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nvidia\tshares  rose\n", "Nvidia shares rose"),
        (" Nvidia\r\nshares\x0bfell\x1f", "Nvidia shares fell"),
        ("엔비디아\u3000주가\n급락", "엔비디아 주가 급락"),
        ("Nvidia shares rose", "Nvidia shares rose"),
    ],
)
def test_control_whitespace_becomes_one_space(raw: str, expected: str) -> None:
    # ASCII and other text take different quick checks; both must catch these.
    assert normalize_text(raw) == expected


def test_hits_keep_span_and_sentence(pack: RuleSet) -> None:
    body = "Analysts cut targets. Nvidia shares fell 17% on Monday. Other U.S. chip stocks rose."
    a = analyze(pack, Article(feed="t", item_id="1", title="Chip selloff", body=body))
    hit = next(h for h in a.hits if h.entity == "nvidia")
    assert (hit.field, hit.alias) == ("body", "Nvidia")
    assert body[hit.start : hit.end] == "Nvidia"
    assert hit.sentence == "Nvidia shares fell 17% on Monday."


def test_spans_point_into_the_normalised_text(pack: RuleSet) -> None:
    a = analyze(pack, Article(feed="t", item_id="1", title="Ｎｖｉｄｉａ  주가", body=""))
    h = a.hits[0]
    assert a.article.title[h.start : h.end] == "Nvidia"


def test_korean_sentence_of_a_hit(pack: RuleSet) -> None:
    body = "설 연휴가 끝났다. 엔비디아 주가는 16.97% 급락했다. 국내 증시도 흔들렸다."
    a = analyze(pack, Article(feed="t", item_id="1", title="t", body=body, lang="ko"))
    assert [h.sentence for h in a.hits if h.entity == "nvidia"] == [
        "엔비디아 주가는 16.97% 급락했다."
    ]


# ----------------------------------------------------------------- a hand-built matcher


def small_matcher() -> Matcher:
    return build_matcher(
        [
            AliasSpec("meta", "메타"),
            AliasSpec("hynix", "SK 하이닉스"),
            AliasSpec("gpu", "GPU"),
            AliasSpec("ms", "MS", cased=True),
            AliasSpec("nvda", "NVDA", kind="ticker"),
            AliasSpec("truck", "H100", near=("GPU", "엔비디아"), window=10),
            AliasSpec("agi", "AGI", avoid=("gross income",)),
        ],
        excludes={"meta": ["메타버스"]},
        terms=["급락"],
    )


SMALL_CASES = [
    ("메타의 투자", {"meta"}),
    ("(메타)", {"meta"}),
    ("아메타", set()),
    ("메타버스", set()),
    ("메타버스와 메타", {"meta"}),
    ("SK하이닉스", {"hynix"}),
    ("SK 하이닉스", {"hynix"}),
    ("SK 하이 닉스", set()),
    ("GPUs", {"gpu"}),
    ("GPUX", set()),
    ("XGPU", set()),
    ("MS", {"ms"}),
    ("ms", set()),
    ("NVDA", {"nvda"}),
    ("Nvda", set()),
    ("H100 GPU", {"truck", "gpu"}),
    ("H100 is a truck; far far away: GPU", {"gpu"}),
    ("AGI", {"agi"}),
    ("AGI, adjusted gross income", set()),
]


@pytest.mark.parametrize(("text", "expected"), SMALL_CASES)
def test_matcher_rules(text: str, expected: set[str]) -> None:
    m = small_matcher()
    assert {h.entity for h in m.scan(text, "").hits} == expected


def test_terms_are_reported_with_positions() -> None:
    m = build_matcher([AliasSpec("x", "엔비디아")], terms=["급락"])
    result = m.scan("엔비디아 급락", "주가 급락했다")
    assert list(result.terms["급락"]) == [("title", 5, 7), ("body", 3, 5)]


def test_title_and_body_hits_are_separate_fields() -> None:
    m = build_matcher([AliasSpec("x", "Nvidia")])
    hits = m.scan("Nvidia", "and Nvidia").hits
    assert [(h.field, h.start, h.end) for h in hits] == [("title", 0, 6), ("body", 4, 10)]


def test_empty_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="empty form"):
        build_matcher([AliasSpec("x", "  ")])


def test_alias_is_reported_as_spelled_in_the_text(pack: RuleSet) -> None:
    a = analyze(pack, Article(feed="t", item_id="1", title="SK하이닉스와 SK 하이닉스", body=""))
    assert [(h.alias, h.start, h.end) for h in a.hits] == [
        ("SK하이닉스", 0, 6),
        ("SK 하이닉스", 8, 15),
    ]


def test_fold_gives_each_text_its_own_fold_whatever_came_before() -> None:
    # fold keeps the last two texts it folded (a headline and a body): a text must never
    # get another text's fold, whether it is the same object, an equal copy or new.
    texts = ["NVIDIA 주가", "SK Hynix HBM", "İstanbul Fab", "TSMC capex", "NVIDIA 주가"]
    expected = ["nvidia 주가", "sk hynix hbm", "İstanbul fab", "tsmc capex", "nvidia 주가"]
    for _ in range(3):
        for text, want in zip(texts, expected, strict=True):
            assert fold(text) == want
            assert fold("".join(list(text))) == want  # an equal string, not the same object
            assert len(fold(text)) == len(text)
    title, body = "Nvidia Beats", "Shares ROSE 5%."
    assert (fold(title), fold(body), fold(title), fold(body)) == (
        "nvidia beats",
        "shares rose 5%.",
        "nvidia beats",
        "shares rose 5%.",
    )
