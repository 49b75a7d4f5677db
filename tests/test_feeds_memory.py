"""What parsing keeps between polls: the articles each feed shows now, reused when
the feed changes, and nothing it has dropped, so a daemon's memory does not grow
with the number of items it has ever seen."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from monitor.feeds import parse
from monitor.feeds.parse import FeedContext, LastBuilt, parse_feed

WIRE = FeedContext(name="wire", url="https://feeds.example.com/wire.xml", lang="en")


def rss(serials: range) -> bytes:
    items = "".join(
        f"<item><title>Story number {n} about chips</title>"
        f"<link>https://news.example.com/{n}</link><guid>g-{n}</guid>"
        f"<pubDate>Mon, 27 Jan 2025 15:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>Body of story {n}.</description></item>"
        for n in reversed(serials)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Wire</title>{items}</channel></rss>"
    ).encode()


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> LastBuilt:
    fresh = LastBuilt(max_items=50)
    monkeypatch.setattr(parse, "LAST_BUILT", fresh)
    return fresh


def test_a_feed_that_keeps_changing_holds_only_what_it_shows_now(memo: LastBuilt) -> None:
    for first in range(200):  # every poll: one new story on top, the oldest one gone
        parsed = parse_feed(rss(range(first, first + 20)), {}, WIRE)
        assert parsed.articles[0].title == f"Story number {first + 19} about chips"
        assert len(memo) == 20


def test_a_changed_feed_gives_the_same_articles_as_a_first_parse(memo: LastBuilt) -> None:
    parse_feed(rss(range(0, 20)), {}, WIRE)
    warm = parse_feed(rss(range(1, 21)), {}, WIRE).articles
    memo.clear()
    cold = parse_feed(rss(range(1, 21)), {}, WIRE).articles
    assert warm == cold


def test_the_same_item_in_another_feed_is_built_for_that_feed(memo: LastBuilt) -> None:
    seoul = FeedContext(
        name="seoul", url="https://feeds.example.com/s.xml", lang="ko", tz=ZoneInfo("Asia/Seoul")
    )
    body = rss(range(0, 5))
    [wire_first, *_] = parse_feed(body, {}, WIRE).articles
    [seoul_first, *_] = parse_feed(body, {}, seoul).articles
    assert (wire_first.feed, wire_first.lang) == ("wire", "en")
    assert (seoul_first.feed, seoul_first.lang) == ("seoul", "ko")


def test_beyond_the_bound_the_feeds_parsed_longest_ago_are_forgotten(memo: LastBuilt) -> None:
    feeds = [FeedContext(name=f"f{i}", url=f"https://feeds.example.com/{i}.xml") for i in range(6)]
    for ctx in feeds:
        parse_feed(rss(range(0, 20)), {}, ctx)
        assert len(memo) <= memo.max_items
    # The two feeds parsed last are held whole; the older ones made room for them.
    assert len(memo) == 40
    assert memo.get(feeds[-1], "Wire") and memo.get(feeds[-2], "Wire")
    assert not memo.get(feeds[0], "Wire")
