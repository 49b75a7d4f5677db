"""Text normalisation for feed items, and the title prefixes Korean outlets use.

`normalize_text` turns whatever a feed put in a title or summary into plain
text: tags (with script and style content) removed, HTML entities resolved (at
most twice, for doubly escaped feeds), NFKC (full-width `Ｈ１００` -> `H100`),
no-break and zero-width spaces handled, whitespace collapsed.

`split_title_prefixes` separates bracketed prefixes such as `[속보]`, `[단독]`,
`[종합2보]` or `(특징주)` from the headline. Matching and dedup use the rest;
`[속보]` and `[단독]` survive as urgency flags.
"""

from __future__ import annotations

import html
import re
import unicodedata

# A tag starts with a letter, `/`, `!` or `?`; "a < b" in prose is not a tag.
_TAG = re.compile(r"<(?:[A-Za-z][^<>]*|/[A-Za-z][^<>]*|!--.*?--|![^<>]*|\?[^<>]*)>", re.S)
_DROP_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.S | re.I)
# Tags after which words would otherwise run together.
_BREAKING_TAG = re.compile(
    r"<(?:br|/?p|/?div|/?li|/?h[1-6]|/?tr|/?td|/?th|/?blockquote|/?ul|/?ol|hr)\b[^>]*>", re.I
)
# One pass over the tags: group 1 is set for tags that separate words.
_ANY_TAG = re.compile(
    r"<(?:(/?(?:br|p|div|li|h[1-6]|tr|td|th|blockquote|ul|ol|hr)\b[^<>]*)|[A-Za-z][^<>]*"
    r"|/[A-Za-z][^<>]*|!--.*?--|![^<>]*|\?[^<>]*)>",
    re.S | re.I,
)
# Whitespace other than a space: with it (or a double space) a split-and-join is
# needed. An explicit class, since a negated Unicode class such as [^\S ] is far slower.
_ODD_SPACE = re.compile(
    "[\t\n\r\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
_SPACE = re.compile(r"\s+")


def _tag_gap(m: re.Match[str]) -> str:
    return " " if m.group(1) is not None else ""


def _strip_tags(text: str) -> str:
    if "<" not in text:
        return text
    if "<s" in text or "<S" in text:
        text = _DROP_BLOCKS.sub(" ", text)
    return _ANY_TAG.sub(_tag_gap, text)


def normalize_text(raw: str | None) -> str:
    """Plain, NFKC-normalised, single-spaced text from feed markup."""
    if not raw:
        return ""
    text = _strip_tags(raw)
    # Feeds escape their HTML once, some twice; a third level is literal text.
    for _ in range(2):
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = _strip_tags(unescaped)
    if not text.isascii():
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        if (
            "\u200b" in text
            or "\ufeff" in text
            or "\u00ad" in text
            or "\u200c" in text
            or "\u200d" in text
            or "\u2060" in text
        ):
            text = _INVISIBLE.sub("", text)
    # Every whitespace character but the space is unprintable, so printable text needs
    # no split-and-join unless it has a double space; isprintable() is the cheaper test
    # (and a false alarm costs only the join, which leaves such text as it is).
    if "  " in text or (not text.isprintable() and _ODD_SPACE.search(text)):
        # str.split() splits on every Unicode space, \xa0 and ideographic space included.
        return " ".join(text.split())
    return text.strip()


# Prefix words. Number-bearing forms such as 종합2보 / 2보 / 1보 are matched by pattern.
URGENT_PREFIXES: dict[str, str] = {
    "속보": "속보",
    "긴급": "속보",
    "단독": "단독",
    "breaking": "breaking",
    "breaking news": "breaking",
    "exclusive": "exclusive",
}
_PREFIX_WORD = (
    r"(?:속보|긴급|단독|종합\s*\d*\s*보?|상보|특징주|공시|\d+\s*보|"
    r"breaking(?:\s+news)?|exclusive|update(?:\s*\d+)?)"
)
_OPENERS = "[(<【〔《「"
_BARE_STARTS = "속긴단종상특공0123456789BbEeUu"  # first letters of the prefix words
_CLOSERS = "])>】〕》」"
_BRACKETED = re.compile(
    rf"\s*[{re.escape(_OPENERS)}]\s*({_PREFIX_WORD})\s*[{re.escape(_CLOSERS)}]\s*", re.I
)
# "BREAKING: ..." / "속보 = ..." without brackets.
_BARE = re.compile(rf"\s*({_PREFIX_WORD})\s*[:=\-|]\s+", re.I)


def split_title_prefixes(title: str) -> tuple[str, tuple[str, ...]]:
    """(headline without leading prefixes, the prefix words in order, lower-cased).

    >>> split_title_prefixes("[단독][속보] 엔비디아 17% 급락")
    ('엔비디아 17% 급락', ('단독', '속보'))
    """
    first = title.lstrip()[:1]
    if not first or (first not in _OPENERS and first not in _BARE_STARTS):
        return title.strip(), ()  # the common case, decided without a regex
    words: list[str] = []
    rest = title
    while True:
        m = _BRACKETED.match(rest) or _BARE.match(rest)
        if m is None or m.end() >= len(rest):
            break
        words.append(_SPACE.sub("", m.group(1)).lower())
        rest = rest[m.end() :]
    return rest.strip(), tuple(words)


def strip_title_prefixes(title: str) -> str:
    """The headline with 속보 / 단독 / 종합 / 상보 / 특징주 / 공시 / N보 prefixes removed."""
    return split_title_prefixes(title)[0]


def urgency_flags(title: str) -> tuple[str, ...]:
    """Urgency flags carried by the title's prefixes, e.g. ("속보",) or ("단독", "속보")."""
    flags: list[str] = []
    for word in split_title_prefixes(title)[1]:
        flag = URGENT_PREFIXES.get(word) or URGENT_PREFIXES.get(word.replace("news", " news"))
        if flag and flag not in flags:
            flags.append(flag)
    return tuple(flags)


def strip_source_suffix(title: str, source: str) -> str:
    """Drop an aggregator's " - 매체명" suffix when it names `source`."""
    if source:
        for sep in (" - ", " | ", " – ", " — "):
            suffix = sep + source
            if title.endswith(suffix) and len(title) > len(suffix):
                return title[: -len(suffix)].rstrip()
    return title
