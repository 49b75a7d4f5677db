"""Feed bodies (bytes) into normalised Articles.

The pipeline, in order:
1. Decode the bytes ourselves: BOM, XML declaration, HTTP charset, then UTF-8
   and cp949 as fallbacks. `euc-kr` and its aliases are read as cp949 (a
   superset that has 똠 / 햏 / 뷁). A candidate that decodes to Latin-1 soup
   with no Hangul, when another decodes to Hangul, is treated as wrong.
2. Remove the DOCTYPE (with its internal subset) and refuse any body that
   declares entities, so no entity expansion, XXE or billion-laughs can
   happen; escape bare ampersands; rewrite the XML declaration to utf-8.
3. A fast path with the standard library's expat parser for plain RSS 2.0 and
   Atom 1.0 (HTML named entities rewritten as numeric references first);
   anything it is unsure of (unknown entities, malformed XML, xhtml content,
   unusual links, unreadable dates, other formats) goes to feedparser, which is
   given an `io.BytesIO` and the headers, never a string, and never fetches.
4. Both paths yield the same raw fields, turned into Articles by one builder:
   normalised text, Google News " - 매체명" suffixes moved to `source`,
   urgency flags from title prefixes, dates in the feed's zone, stable ids and
   content hashes.

Everything here is synchronous and CPU-bound; callers run it off the event loop.
"""

from __future__ import annotations

import codecs
import io
import re
import threading
import xml.etree.ElementTree as ET
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from html.entities import name2codepoint
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.core.dates import parse_date
from monitor.core.errors import FeedParseError
from monitor.core.frozen import maker
from monitor.core.identity import content_hash, item_identity
from monitor.core.models import Article, Lang
from monitor.core.text import normalize_text, strip_source_suffix, urgency_flags

SUMMARY_MAX = 4000
BODY_MAX = 20000

_KOREAN_ALIASES = frozenset(
    {
        "euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "ksc_5601",
        "ks_c_5601-1989", "x-windows-949", "windows-949", "ms949", "cp949", "uhc", "korean",
        "x-euc-kr", "iso-ir-149", "csksc56011987",
    }
)  # fmt: skip
_SINGLE_BYTE = frozenset({"latin_1", "iso8859-1", "cp1252", "ascii", "iso8859-15"})
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:\-]+)[\"']", re.I)
_XML_DECL_STR = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:\-]+)", re.I)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN1 = re.compile(r"[\x80-\xff]")
_DECLARATION = re.compile(r"<!(?!\[CDATA\[|--)")
_DOCTYPE = re.compile(r"<!DOCTYPE", re.I)
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]{0,31}|#[0-9]{1,8}|#x[0-9A-Fa-f]{1,8});)")
_SUBSET_END = re.compile(r"\]\s*>")

_NAMED_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})

NS_ATOM = "{http://www.w3.org/2005/Atom}"
NS_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
NS_DC = "{http://purl.org/dc/elements/1.1/}"


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What parsing needs to know about the feed, beyond its bytes."""

    name: str
    url: str
    lang: Lang = "en"
    tz: tzinfo = UTC
    source: str | None = None


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item's fields as the feed wrote them (markup and entities still in)."""

    guid: str = ""
    link: str = ""
    title: str = ""
    summary: str = ""
    body: str = ""
    published: str = ""
    published_utc: datetime | None = None  # feedparser's own reading, used only as a fallback
    source: str = ""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    articles: tuple[Article, ...]
    parser: str  # "fast" or "feedparser"
    encoding: str


# --------------------------------------------------------------------------- decoding


def codec_for(label: str | None) -> str | None:
    """Python codec name for a charset label, with the Korean aliases read as cp949."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _KOREAN_ALIASES:
        return "cp949"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _misdecoded(text: str) -> bool:
    return _HANGUL.search(text) is None and len(_LATIN1.findall(text, 0, 200_000)) >= 8


def _mostly_hangul(text: str) -> bool:
    non_ascii = sum(1 for ch in text if ord(ch) > 0x7F)
    return non_ascii > 0 and len(_HANGUL.findall(text)) >= non_ascii * 0.5


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, codec) for a feed body; FeedParseError if nothing decodes it."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            try:
                return body.decode(codec).lstrip("\ufeff"), codec
            except UnicodeDecodeError as e:
                raise FeedParseError(f"body starts with a {codec} BOM but is not {codec}") from e
    m = _XML_DECL.match(body[:1024])
    declared = codec_for(m.group(1).decode("ascii")) if m else None
    h = _CHARSET.search(content_type or "")
    from_http = codec_for(h.group(1)) if h else None
    candidates: list[str] = []
    for c in (declared, "utf-8", from_http, "cp949", "cp1252"):
        if c and c not in candidates and not c.startswith("utf-16") and not c.startswith("utf-32"):
            candidates.append(c)
    suspect: tuple[str, str] | None = None
    for codec in candidates:
        try:
            text = body.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if codec in ("utf-8", "cp949"):
            if suspect is None or _mostly_hangul(text):
                return text, codec
            continue
        if _misdecoded(text):
            suspect = suspect or (text, codec)
            continue
        return text, codec
    if suspect is not None:
        return suspect
    raise FeedParseError("cannot decode the body in any known charset")


def defuse(text: str) -> str:
    """Remove the DOCTYPE (with any internal subset); refuse entity declarations.

    Real feeds never declare entities; bodies that do are billion-laughs,
    quadratic-blowup or XXE attempts, and are refused outright.
    """
    if "<!" not in text:
        return text
    # Markup declarations other than CDATA sections and comments are rare; look at
    # each (a case-sensitive literal search is fast, IGNORECASE over the body is not).
    doctype = False
    for decl in _DECLARATION.finditer(text):
        word = text[decl.end() : decl.end() + 7].upper()
        if word.startswith("ENTITY"):
            raise FeedParseError("refused: the body declares XML entities")
        doctype = doctype or word == "DOCTYPE"
    if not doctype:
        return text
    while True:
        m = _DOCTYPE.search(text)
        if m is None:
            break
        start = m.start()
        close = text.find(">", start)
        bracket = text.find("[", start)
        if close == -1:
            text = text[:start]
            break
        if bracket != -1 and bracket < close:
            end = _SUBSET_END.search(text, bracket)
            stop = end.end() if end else len(text)
        else:
            stop = close + 1
        text = text[:start] + text[stop:]
    return text


def prepare(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """Decoded, defused, re-encoded as UTF-8 with a matching XML declaration."""
    text, codec = decode_body(body, content_type)
    text = defuse(text)
    if "&" in text:
        # A bare "&" ("R&D", "AT&T") is the commonest flaw in real feeds; escaped, the
        # body is well-formed, and feedparser no longer invents "&D;" from it.
        text = _BARE_AMPERSAND.sub("&amp;", text)
    text = _XML_DECL_STR.sub("", text, count=1).lstrip()
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode("utf-8"), codec


# --------------------------------------------------------------------------- fast path


class _Unsure(Exception):
    """The fast path declines this feed; feedparser takes it."""


def _text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    if len(el):
        raise _Unsure("element has children")
    return el.text or ""


def _plain(el: ET.Element | None) -> str:
    if el is not None and el.get("type", "text").lower() not in ("text", "html", "text/html"):
        raise _Unsure("non-text content type")
    return _text(el)


def _check_link(link: str) -> str:
    if ":" in link.split("/", 1)[0] and not link.strip().startswith(("http://", "https://")):
        raise _Unsure("link with an unusual scheme")
    return link


def _check_date(raw: str, ctx: FeedContext) -> str:
    if raw.strip() and parse_date(raw, ctx.tz) is None:
        raise _Unsure("date our parser cannot read")
    return raw


_RSS_FIELDS = {
    "guid": "guid",
    "link": "link",
    "title": "title",
    "description": "summary",
    NS_CONTENT + "encoded": "body",
    "pubDate": "published",
    NS_DC + "date": "dc_date",
    "source": "source",
}


_new_raw_item = maker(RawItem)  # positional: guid, link, title, summary, body, published, ...


def _rss_items(channel: ET.Element, ctx: FeedContext) -> list[RawItem]:
    items: list[RawItem] = []
    for it in channel.iter("item"):
        fields: dict[str, str] = {}
        permalink = False
        for child in it:  # one pass over the children instead of a find() per field
            key = _RSS_FIELDS.get(child.tag)
            if key is not None and key not in fields:
                fields[key] = _text(child)
                if key == "guid":
                    permalink = child.get("isPermaLink", "true").lower() != "false"
        if "link" not in fields:
            if permalink:
                raise _Unsure("permalink guid standing in for a link")
            fields["link"] = ""
        items.append(
            _new_raw_item(
                fields.get("guid", ""),
                _check_link(fields["link"]),
                fields.get("title", ""),
                fields.get("summary", ""),
                fields.get("body", ""),
                _check_date(fields.get("published") or fields.get("dc_date", ""), ctx),
                None,
                fields.get("source", ""),
            )
        )
    return items


def _atom_link(entry: ET.Element) -> str:
    alternates = [
        el for el in entry.findall(NS_ATOM + "link") if el.get("rel", "alternate") == "alternate"
    ]
    if len(alternates) > 1:
        raise _Unsure("several alternate links")
    return _check_link(alternates[0].get("href", "")) if alternates else ""


def _atom_items(root: ET.Element, ctx: FeedContext) -> list[RawItem]:
    items: list[RawItem] = []
    for entry in root.iter(NS_ATOM + "entry"):
        date = entry.find(NS_ATOM + "published")
        if date is None:
            date = entry.find(NS_ATOM + "updated")
        content = entry.find(NS_ATOM + "content")
        if content is not None and content.get("src"):
            raise _Unsure("out-of-line content")
        if entry.find(NS_ATOM + "source") is not None:
            raise _Unsure("atom source element")
        items.append(
            RawItem(
                guid=_text(entry.find(NS_ATOM + "id")),
                link=_atom_link(entry),
                title=_plain(entry.find(NS_ATOM + "title")),
                summary=_plain(entry.find(NS_ATOM + "summary")),
                body=_plain(content),
                published=_check_date(_text(date), ctx),
            )
        )
    return items


def _numeric_entity(m: re.Match[bytes]) -> bytes:
    name = m.group(1).decode("ascii")
    if name in _XML_ENTITIES:
        return m.group(0)
    code = name2codepoint.get(name)
    if code is None:
        raise _Unsure(f"unknown entity &{name};")
    return b"&#%d;" % code


def _fast(data: bytes, ctx: FeedContext) -> tuple[str, list[RawItem]]:
    if b"xml:base" in data:
        raise _Unsure("xml:base")
    if b"&" in data:
        # HTML's named entities (&nbsp; &middot; ...) are common in Korean feeds and
        # undefined in XML; as numeric references they mean the same and expat reads
        # them. Inside CDATA the text changes only in spelling, and normalisation
        # unescapes both spellings alike.
        data = _NAMED_ENTITY.sub(_numeric_entity, data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise _Unsure(str(e)) from e
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise _Unsure("rss without a channel")
        return _text(channel.find("title")), _rss_items(channel, ctx)
    if root.tag == NS_ATOM + "feed":
        return _plain(root.find(NS_ATOM + "title")), _atom_items(root, ctx)
    raise _Unsure(f"root element {root.tag}")


# --------------------------------------------------------------------------- feedparser path


def _fp_time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(timegm(value), UTC) if value else None
    except (TypeError, ValueError, OverflowError):
        return None


def _slow(data: bytes, ctx: FeedContext) -> tuple[str, list[RawItem]]:
    # No content-location: feedparser would "resolve" relative guids into URLs.
    # Relative links are resolved once, for both paths, in build_articles.
    headers = {"content-type": "application/xml; charset=utf-8"}
    try:
        d = feedparser.parse(
            io.BytesIO(data),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser raises a wide range on hostile input
        raise FeedParseError(f"unparseable feed: {type(e).__name__}: {e}") from e
    if not d.entries and (not d.get("version") or d.get("bozo")):
        # Broken and empty: a truncated or non-feed body, not a quiet feed.
        reason = d.get("bozo_exception")
        what = "not a feed" if not d.get("version") else "malformed feed"
        raise FeedParseError(f"{what}{f': {reason}' if reason else ''}")
    items: list[RawItem] = []
    for entry in d.entries:
        content = entry.get("content") or []
        body = content[0].get("value", "") if content else ""
        # Without a summary of its own, an entry gets `summary` copied from its content.
        summary = entry.get("summary", "") if "summary_detail" in entry else ""
        source = entry.get("source") or {}
        items.append(
            RawItem(
                guid=entry.get("id", ""),
                link=entry.get("link", ""),
                title=entry.get("title", ""),
                summary=summary,
                body=body,
                published=entry.get("published") or entry.get("updated") or "",
                published_utc=_fp_time(
                    entry.get("published_parsed") or entry.get("updated_parsed")
                ),
                source=source.get("title", "") if isinstance(source, dict) else "",
            )
        )
    return d.feed.get("title", ""), items


# --------------------------------------------------------------------------- articles


def _safe_link(link: str, base: str) -> str:
    link = link.strip()
    if link and not link.startswith(("http://", "https://")):
        link = urljoin(base, link)
    return link if link.startswith(("http://", "https://")) else ""


_new_article = maker(Article)  # the fields in order, as declared in monitor.core.models


def build_article(r: RawItem, feed_title: str, ctx: FeedContext) -> Article | None:
    """One Article from one raw item (None if it has no title and no text)."""
    item_source = normalize_text(r.source)
    title = normalize_text(r.title)
    if item_source:
        title = strip_source_suffix(title, item_source)
    summary = normalize_text(r.summary)[:SUMMARY_MAX]
    body = normalize_text(r.body)[:BODY_MAX]
    if not summary and body:
        summary = body[:500]
    if body == summary:
        body = ""
    if not title:
        title = summary[:120]
    if not title:
        return None
    link = _safe_link(r.link, ctx.url)
    published = parse_date(r.published, ctx.tz) if r.published else None
    return _new_article(
        ctx.name,  # feed
        item_identity(r.guid, link, title, summary),
        title,
        link,
        summary,
        body,
        ctx.lang,
        published or r.published_utc,
        item_source or ctx.source or feed_title,  # source
        urgency_flags(title),
        content_hash(title, summary, body, link),
    )


class LastBuilt:
    """The articles built from each feed's last body, by raw item.

    Most items of a changed feed are the ones it showed last time, so a parse
    reuses those and builds only the new ones. Each parse of a feed replaces that
    feed's entry, so what is held is what the feeds show now: an item a feed has
    dropped is let go at once, and the memory stays the same however long the
    daemon runs. Beyond `max_items` in all, the feeds parsed longest ago are
    forgotten first. Shared by the parse threads: a parse reads one entry and
    replaces it whole, under a lock.
    """

    def __init__(self, max_items: int = 20_000) -> None:
        self.max_items = max_items
        self._feeds: dict[tuple[FeedContext, str], dict[RawItem, Article | None]] = {}
        self._items = 0
        self._lock = threading.Lock()

    def get(self, ctx: FeedContext, feed_title: str) -> dict[RawItem, Article | None]:
        return self._feeds.get((ctx, feed_title), {})

    def put(self, ctx: FeedContext, feed_title: str, built: dict[RawItem, Article | None]) -> None:
        key = (ctx, feed_title)
        with self._lock:
            old = self._feeds.pop(key, None)  # re-inserted last: the most recently parsed
            self._items += len(built) - (len(old) if old is not None else 0)
            self._feeds[key] = built
            while self._items > self.max_items and len(self._feeds) > 1:
                oldest = next(iter(self._feeds))
                self._items -= len(self._feeds.pop(oldest))

    def __len__(self) -> int:
        """Raw items held, over every feed."""
        return self._items

    def clear(self) -> None:
        with self._lock:
            self._feeds.clear()
            self._items = 0


LAST_BUILT = LastBuilt()
_UNBUILT: Any = object()


def build_articles(feed_title: str, raw: list[RawItem], ctx: FeedContext) -> tuple[Article, ...]:
    """Articles from raw items: normalised, identified, de-duplicated within the feed."""
    feed_title = normalize_text(feed_title)
    before = LAST_BUILT.get(ctx, feed_title)
    built: dict[RawItem, Article | None] = {}
    seen: set[str] = set()
    out: list[Article] = []
    for r in raw:
        # One lookup (a raw item hashes all of its fields), none for a feed new to us.
        article = before.get(r, _UNBUILT) if before else _UNBUILT
        if article is _UNBUILT:
            article = build_article(r, feed_title, ctx)
        built[r] = article
        if article is None or article.item_id in seen:
            continue
        seen.add(article.item_id)
        out.append(article)
    LAST_BUILT.put(ctx, feed_title, built)
    return tuple(out)


def _prepared(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, str]:
    if not body.strip():
        raise FeedParseError("empty body")
    return prepare(body, headers.get("content-type"))


def _fast_parsed(data: bytes, codec: str, ctx: FeedContext) -> ParsedFeed | None:
    try:
        title, raw = _fast(data, ctx)
    except _Unsure:
        return None
    return ParsedFeed(normalize_text(title), build_articles(title, raw, ctx), "fast", codec)


def parse_feed_fast(body: bytes, headers: Mapping[str, str], ctx: FeedContext) -> ParsedFeed | None:
    """`parse_feed` by the fast path alone: None where it declines the feed (feedparser's
    turn). Its cost grows with the body and nothing else: expat over a body with the
    DOCTYPE gone and entity declarations refused, and one pass over the items."""
    return _fast_parsed(*_prepared(body, headers), ctx)


def parse_feed(
    body: bytes, headers: Mapping[str, str], ctx: FeedContext, *, fast: bool = True
) -> ParsedFeed:
    """Parse a fetched body. FeedParseError when it is not a feed we can read."""
    data, codec = _prepared(body, headers)
    parsed = _fast_parsed(data, codec, ctx) if fast else None
    if parsed is not None:
        return parsed
    title, raw = _slow(data, ctx)
    return ParsedFeed(normalize_text(title), build_articles(title, raw, ctx), "feedparser", codec)
