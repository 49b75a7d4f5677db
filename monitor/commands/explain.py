"""`monitor explain`: show what the engine sees in articles.

Reads a `.jsonl` file of articles, a feed file (RSS/Atom), an HTML article page
or `-` (stdin, sniffed), runs the engine on each article and prints either one
JSON object per article (`--json`) or a readable report: the text with every
hit highlighted, each rule's verdict with its reasons, and each stance target's
label with its evidence.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TextIO

from monitor.core.engine import RuleSet, analyze, explain_rules
from monitor.core.errors import FeedParseError
from monitor.core.matcher import is_hangul, normalize_text
from monitor.core.models import Analysis, Article, Lang
from monitor.rulefiles import load_ruleset, resolve_rules_dir


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="show entities, rule verdicts and stance for articles",
        description="Run the engine on articles from a .jsonl file, a feed file, an HTML "
        "page or - (stdin) and show what it found.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".jsonl, RSS/Atom, HTML, or -")
    p.add_argument("--rules", metavar="DIR", help="rule directory (default: ./rules or bundled)")
    p.add_argument("--config", metavar="FILE", help="config file for [rules] settings")
    p.add_argument("--json", action="store_true", help="one JSON object per article")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- input


def guess_lang(text: str) -> Lang:
    """Korean when at least a fifth of the letters are Hangul."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for c in letters if is_hangul(c))
    return "ko" if hangul * 5 >= len(letters) else "en"


def _published(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def article_from_dict(obj: dict[str, Any], fallback_id: str) -> Article:
    title = normalize_text(str(obj.get("title") or ""))
    body = normalize_text(str(obj.get("body") or ""))
    summary = normalize_text(str(obj.get("summary") or ""))
    lang = obj.get("lang")
    if lang not in ("ko", "en"):
        lang = guess_lang(f"{title} {body or summary}")
    return Article(
        feed=str(obj.get("feed") or "explain"),
        item_id=str(obj.get("id") or fallback_id),
        title=title,
        link=str(obj.get("link") or ""),
        summary=summary,
        body=body,
        lang=lang,
        published=_published(obj.get("published")),
        source=str(obj.get("source") or ""),
    )


def read_jsonl(text: str, name: str, problems: list[str]) -> Iterator[Article]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{name}:{n}: not JSON: {e.msg}")
            continue
        if not isinstance(obj, dict) or not obj.get("title"):
            problems.append(f"{name}:{n}: needs an object with a title")
            continue
        yield article_from_dict(obj, f"{Path(name).stem}-{n}")


class _PageParser(HTMLParser):
    """Collects <title>, og:title and the text of <p> paragraphs of an article page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.og_title = ""
        self.lang = ""
        self.paragraphs: list[str] = []
        self._in: str | None = None
        self._buf: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html" and a.get("lang"):
            self.lang = (a["lang"] or "")[:2].lower()
        elif tag == "meta" and (a.get("property") or a.get("name")) == "og:title":
            self.og_title = a.get("content") or ""
        elif tag in ("script", "style", "nav", "footer", "aside"):
            self._skip += 1
        elif tag in ("title", "p") and not self._skip:
            self._in, self._buf = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "nav", "footer", "aside") and self._skip:
            self._skip -= 1
        elif tag == self._in:
            text = normalize_text("".join(self._buf))
            if tag == "title":
                self.title = text
            elif text:
                self.paragraphs.append(text)
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and not self._skip:
            self._buf.append(data)


def read_html(text: str, name: str) -> Article:
    p = _PageParser()
    p.feed(text)
    p.close()
    title = normalize_text(p.og_title) or p.title
    body = " ".join(p.paragraphs)
    lang: Lang = p.lang if p.lang in ("ko", "en") else guess_lang(f"{title} {body}")  # type: ignore[assignment]
    return Article(
        feed="explain", item_id=Path(name).stem or "page", title=title, body=body, lang=lang
    )


def read_feed(data: bytes, name: str) -> list[Article]:
    # Commands may use adapters; the feed parser is the one the daemon uses.
    from monitor.feeds.parse import FeedContext, parse_feed

    sample = data[:4000].decode("utf-8", "replace")
    ctx = FeedContext(name=Path(name).stem or "stdin", url="", lang=guess_lang(sample))
    parsed = parse_feed(data, {}, ctx)
    return [
        a if a.lang == guess_lang(f"{a.title} {a.text}") else _relang(a) for a in parsed.articles
    ]


def _relang(a: Article) -> Article:
    from dataclasses import replace

    return replace(a, lang=guess_lang(f"{a.title} {a.text}"))


def sniff(data: bytes, name: str) -> str:
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".html", ".htm")):
        return "html"
    if name.endswith((".xml", ".rss", ".atom")):
        return "feed"
    head = data.lstrip()[:512].lower()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith(b"{"):
        return "jsonl"
    if b"<html" in head or head.startswith(b"<!doctype html"):
        return "html"
    return "feed"


def read_articles(path: str, problems: list[str], stdin: TextIO | None = None) -> list[Article]:
    name = "<stdin>" if path == "-" else path
    if path == "-":
        stream = stdin or sys.stdin
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            problems.append(f"{path}: cannot read: {e.strerror}")
            return []
    kind = sniff(data, name)
    if kind == "jsonl":
        return list(read_jsonl(data.decode("utf-8-sig", "replace"), name, problems))
    if kind == "html":
        return [read_html(data.decode("utf-8", "replace"), name)]
    try:
        return read_feed(data, name)
    except (FeedParseError, ValueError) as e:
        problems.append(f"{name}: not a feed, page or .jsonl file: {e}")
        return []


# --------------------------------------------------------------------------- output


def to_json(a: Analysis) -> dict[str, Any]:
    return {
        "id": a.article.item_id,
        "title": a.article.title,
        "entities": list(a.entities),
        "rules": [m.rule_id for m in a.rules],
        "stance": {t: s.to_dict() for t, s in a.stance.items()},
    }


def highlight(text: str, spans: list[tuple[int, int, str]], color: bool) -> str:
    """`text` with each span wrapped: ANSI colour on a terminal, else [[...]]{entity}."""
    out: list[str] = []
    pos = 0
    for start, end, entity in sorted(spans):
        if start < pos:
            continue
        out.append(text[pos:start])
        if color:
            out.append(f"\x1b[1;33m{text[start:end]}\x1b[0m\x1b[2m{{{entity}}}\x1b[0m")
        else:
            out.append(f"[[{text[start:end]}]]{{{entity}}}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def render_human(rs: RuleSet, a: Analysis, color: bool, out: TextIO) -> None:
    art = a.article
    title_spans = [(h.start, h.end, h.entity) for h in a.hits if h.field == "title"]
    body_spans = [(h.start, h.end, h.entity) for h in a.hits if h.field == "body"]
    print(f"== {art.item_id} ({art.lang}{', ' + art.source if art.source else ''})", file=out)
    print("title: " + highlight(art.title, title_spans, color), file=out)
    if art.text:
        print("text:  " + highlight(art.text, body_spans, color), file=out)
    print("entities: " + (", ".join(a.entities) or "(none)"), file=out)
    for e in a.entities:
        hs = [h for h in a.hits if h.entity == e]
        where = "; ".join(f'"{h.alias}" {h.field} {h.start}-{h.end}' for h in hs[:5])
        more = f" (+{len(hs) - 5} more)" if len(hs) > 5 else ""
        print(f"  {e}: {where}{more}", file=out)
    print("rules:", file=out)
    for v in explain_rules(rs, a):
        mark = "FIRED" if v.matched else "no   "
        print(f"  {mark} {v.rule.id} - {v.rule.title}", file=out)
        for reason in v.reasons:
            print(f"        {reason}", file=out)
    if a.stance:
        print("stance:", file=out)
        for target, s in a.stance.items():
            print(
                f"  {target}: {s.label.value} (score {s.score:+.2f}, "
                f"confidence {s.confidence:.2f})",
                file=out,
            )
            for ev in s.evidence:
                print(f"      > {ev}", file=out)
    print(file=out)


def run(args: argparse.Namespace) -> int:
    from monitor.config import load_config

    config = load_config(args.config) if args.config else None
    directory = resolve_rules_dir(config.rules.dir if config else None, args.config, args.rules)
    rs = load_ruleset(directory, config.rules if config else None)
    problems: list[str] = []
    out = sys.stdout
    color = (not args.json) and out.isatty()
    for path in args.paths:
        for article in read_articles(path, problems):
            try:
                analysis = analyze(rs, article)
            except Exception as e:  # one bad article must not hide the others
                problems.append(f"{path}: {article.item_id}: {type(e).__name__}: {e}")
                continue
            if args.json:
                out.write(json.dumps(to_json(analysis), ensure_ascii=False) + "\n")
            else:
                render_human(rs, analysis, color, out)
    for p in problems:
        print(f"monitor explain: {p}", file=sys.stderr)
    return 1 if problems else 0
