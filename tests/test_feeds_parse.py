"""Feed bodies into Articles: golden feeds, Korean charsets, hostile bodies, both parser paths."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.core.dates import to_utc_z
from monitor.core.errors import FeedParseError
from monitor.feeds.isolate import parse_bounded
from monitor.feeds.parse import FeedContext, ParsedFeed, decode_body, parse_feed

DATA = Path(__file__).parent / "data" / "feeds"
GOLDEN = sorted(DATA.glob("*.json"))
CTX = FeedContext(
    name="t", url="https://feeds.example.com/t.xml", lang="ko", tz=ZoneInfo("Asia/Seoul")
)


def load_case(path: Path) -> tuple[bytes, dict[str, str], FeedContext, dict[str, Any]]:
    case = json.loads(path.read_text(encoding="utf-8"))
    c = case["context"]
    ctx = FeedContext(
        name=c["name"], url=c["url"], lang=c["lang"], tz=ZoneInfo(c["timezone"]), source=c["source"]
    )
    return path.with_suffix(".xml").read_bytes(), case["headers"], ctx, case


def as_dicts(parsed: ParsedFeed) -> list[dict[str, Any]]:
    return [
        {
            "item_id": a.item_id,
            "title": a.title,
            "link": a.link,
            "summary": a.summary,
            "body": a.body,
            "published": to_utc_z(a.published) if a.published else None,
            "source": a.source,
            "urgency": list(a.urgency),
            "lang": a.lang,
        }
        for a in parsed.articles
    ]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_feeds(path: Path) -> None:
    body, headers, ctx, case = load_case(path)
    parsed = parse_feed(body, headers, ctx)
    assert parsed.title == case["feed_title"]
    assert as_dicts(parsed) == case["articles"]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_fast_path_gives_the_same_articles_as_feedparser(path: Path) -> None:
    body, headers, ctx, _ = load_case(path)
    assert (
        parse_feed(body, headers, ctx).articles
        == parse_feed(body, headers, ctx, fast=False).articles
    )


def test_fast_path_equivalence_on_a_large_generated_feed() -> None:
    items = "".join(
        f"<item><title><![CDATA[[속보] 엔비디아 {i} &amp; HBM]]></title>"
        f"<link>https://n.example.com/{i}</link><guid isPermaLink='false'>g{i}</guid>"
        f"<description>&lt;p&gt;본문 {i} Ｈ１００&lt;/p&gt;</description>"
        f"<pubDate>Thu, 30 Jan 2025 18:{i % 60:02d}:00 +0900</pubDate></item>"
        for i in range(50)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>N</title>{items}</channel></rss>'
    )
    fast = parse_feed(body.encode(), {}, CTX)
    assert fast.parser == "fast"
    assert fast.articles == parse_feed(body.encode(), {}, CTX, fast=False).articles
    assert len(fast.articles) == 50
    assert fast.articles[0].title == "[속보] 엔비디아 0 & HBM"
    assert fast.articles[0].urgency == ("속보",)
    assert fast.articles[0].summary == "본문 0 H100"


def test_cp949_without_declaration_and_a_wrong_charset_header() -> None:
    body = (DATA / "yonhap-cp949-nodecl.xml").read_bytes()
    for header in ("text/xml; charset=iso-8859-1", "text/xml; charset=utf-8", "text/xml", None):
        parsed = parse_feed(body, {"content-type": header} if header else {}, CTX)
        assert parsed.articles[0].title == "[속보] 삼성전자, HBM3E 엔비디아 퀄 테스트 통과"


@pytest.mark.parametrize("label", ["euc-kr", "EUC-KR", "ks_c_5601-1987", "x-windows-949", "cp949"])
def test_korean_charset_aliases_read_as_cp949(label: str) -> None:
    body = f'<?xml version="1.0" encoding="{label}"?><rss version="2.0"><channel><title>t</title>'
    body += "<item><title>똠 햏 뷁</title><link>https://a/1</link></item></channel></rss>"
    parsed = parse_feed(body.encode("cp949"), {}, CTX)
    assert parsed.articles[0].title == "똠 햏 뷁"
    assert parsed.encoding == "cp949"


def test_utf8_body_under_a_latin1_declaration_is_recovered() -> None:
    body = '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>t</title>'
    body += "<item><title>엔비디아 급락 소식입니다</title><link>https://a/1</link></item></channel></rss>"
    assert parse_feed(body.encode("utf-8"), {}, CTX).articles[0].title == "엔비디아 급락 소식입니다"


def test_genuine_latin1_stays_latin1() -> None:
    text, codec = decode_body(
        "<a>café résumé</a>".encode("latin-1"), "text/xml; charset=iso-8859-1"
    )
    assert text == "<a>café résumé</a>"
    assert codec in ("iso8859-1", "latin-1", "cp1252")


LOL = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10)
    )
    + ']><rss version="2.0"><channel><title>&lol9;</title></channel></rss>'
)
QUADRATIC = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + "x" * 50_000 + '">]>'
    '<rss version="2.0"><channel><title>t</title><item><title>'
    + "&a;" * 50_000
    + "</title></item></channel></rss>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>&x;</title></channel></rss>'
)


@pytest.mark.parametrize(
    "body",
    [
        LOL.encode(),
        QUADRATIC.encode(),
        XXE.encode(),
        b"/etc/passwd",
        b"http://127.0.0.1:9/feed.xml",
        os.urandom(64 * 1024),
        b"",
        b"<html><body>not a feed</body></html>",
    ],
    ids=["billion-laughs", "quadratic", "xxe", "path", "url", "random", "empty", "html"],
)
def test_hostile_bodies_are_errors_quickly(body: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(FeedParseError):
        parse_feed(body, {}, CTX)
    assert time.monotonic() - started < 1.0


def test_external_dtd_without_entities_is_dropped_and_parsed() -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://127.0.0.1:9/rss-0.91.dtd"><rss version="0.91"><channel><title>old</title>'
        "<item><title>still read</title><link>https://a/1</link></item></channel></rss>"
    )
    assert parse_feed(body.encode(), {}, CTX).articles[0].title == "still read"


def test_relative_links_resolve_and_unsafe_schemes_are_dropped() -> None:
    body = (
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>rel</title><link>/news/1</link><guid isPermaLink='false'>1</guid></item>"
        "<item><title>js</title><link>javascript:alert(1)</link>"
        "<guid isPermaLink='false'>2</guid></item>"
        "</channel></rss>"
    )
    a, b = parse_feed(body.encode(), {}, CTX).articles
    assert a.link == "https://feeds.example.com/news/1"
    assert b.link == ""


async def test_parse_bounded_isolates_big_bodies_in_a_process() -> None:
    items = "".join(
        f"<item><title>t{i}</title><link>https://a/{i}</link></item>" for i in range(200)
    )
    body = f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()
    parsed = await parse_bounded(body, {}, CTX, timeout=20, isolate_bytes=1000)
    assert len(parsed.articles) == 200
    with pytest.raises(FeedParseError, match="longer than"):
        await parse_bounded(body * 2000, {}, CTX, timeout=0.2, isolate_bytes=1000)


async def test_small_feeds_do_not_wait_behind_busy_parse_threads() -> None:
    """A story in a small feed is read at once even while both parse threads are busy
    with slow bodies; a small feed the fast path declines (RSS 1.0) goes to them."""
    import asyncio
    import threading

    from monitor.feeds import isolate

    small = (DATA / "hankyung.xml").read_bytes()
    rdf, rdf_headers, rdf_ctx, _ = load_case(DATA / "mk-rdf-loose.json")
    assert len(small) <= isolate.INLINE_BYTES and len(rdf) <= isolate.INLINE_BYTES
    release = threading.Event()
    threads = isolate._parse_threads()
    busy = [threads.submit(release.wait, 10) for _ in range(isolate.PARSE_THREADS)]
    try:
        started = time.monotonic()
        parsed = await parse_bounded(small, {}, CTX, timeout=5)
        assert parsed.parser == "fast" and parsed.articles
        assert time.monotonic() - started < 1.0
        declined = asyncio.ensure_future(parse_bounded(rdf, rdf_headers, rdf_ctx, timeout=5))
        await asyncio.sleep(0.2)
        assert not declined.done()  # it waits for a thread
    finally:
        release.set()
        for f in busy:
            f.result(5)
    assert (await declined).parser == "feedparser"


async def test_a_small_hostile_body_is_refused_on_the_quick_path_too() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel>&a;</channel></rss>'
    )
    with pytest.raises(FeedParseError, match="entities"):
        await parse_bounded(body, {}, CTX, timeout=5)
    with pytest.raises(FeedParseError, match="empty"):
        await parse_bounded(b"  ", {}, CTX, timeout=5)


def test_each_golden_feed_takes_the_expected_path() -> None:
    paths = {p.stem: parse_feed(*load_case(p)[:3]).parser for p in GOLDEN}
    assert paths.pop("mk-rdf-loose") == "feedparser"  # RSS 1.0 is feedparser's
    assert set(paths.values()) == {"fast"}


@pytest.mark.parametrize(
    ("title", "path"),
    [
        ("R&D 투자 &nbsp;확대&hellip; AT&T &middot; 끝", "fast"),
        ("<![CDATA[R&D &nbsp;확대&hellip; &amp;lt;b&amp;gt;]]>", "fast"),
        ("숫자 참조 &#8230; &#x2026;", "fast"),
        ("모르는 개체 &bogus; 는 feedparser로", "feedparser"),
    ],
)
def test_html_entities_and_bare_ampersands_agree_across_paths(title: str, path: str) -> None:
    body = (
        f'<rss version="2.0"><channel><title>t</title><item><title>{title}</title>'
        "<link>https://a/1</link><description>요약&nbsp;R&D</description></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, {}, CTX)
    assert parsed.parser == path
    assert parsed.articles == parse_feed(body, {}, CTX, fast=False).articles
    assert "&" not in parsed.articles[0].summary.replace("R&D", "")
