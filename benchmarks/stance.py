"""Stance throughput on one core: the stance step alone, on about 2 KB articles.

    python benchmarks/stance.py [--corpus ../shared/corpus/public.jsonl] [--rounds 7]

Each article is a corpus item whose body is padded with the bodies of the next
items in the same language until it reaches 2 KB. Entity hits come from a plain
alias search, so that only the stance step is timed: `assess_all`, as the engine
calls it, for Nvidia alone and for all four default stance targets (one shared
analysis, then the attribution per target). CPU time of this process, best of
several rounds, because other processes on a shared machine would inflate wall
time. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.core.models import Article, Hit  # noqa: E402
from monitor.core.stance import Lexicon, assess_all, compile_lexicon  # noqa: E402
from tests.fakes.entity_hits import find_hits  # noqa: E402

TARGETS = ("nvidia", "sk_hynix", "samsung_electronics", "tsmc")


def load_lexicon() -> tuple[Lexicon, float]:
    docs = {
        str(p): tomllib.loads(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "rules/lexicon").glob("*.toml"))
    }
    t0 = time.process_time()
    lexicon = compile_lexicon(docs)
    return lexicon, time.process_time() - t0


def padded_articles(corpus: Path, size: int = 2048) -> list[tuple[Article, list[Hit]]]:
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    out = []
    for i, row in enumerate(rows):
        same = [r for r in rows if r["lang"] == row["lang"]]
        body, j = row["body"], 0
        while len(body.encode()) < size:
            body += " " + same[(i + j) % len(same)]["body"]
            j += 1
        a = Article(
            feed="bench", item_id=row["id"], title=row["title"], body=body, lang=row["lang"]
        )
        out.append((a, find_hits(a)))
    return out


def best_seconds_per_article(
    lexicon: Lexicon,
    items: Sequence[tuple[Article, list[Hit]]],
    targets: Sequence[str],
    rounds: int,
) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for article, hits in items:
            assess_all(article, targets, hits, lexicon)
        best = min(best, (time.process_time() - t0) / len(items))
    return best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/public.jsonl")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    lexicon, compile_s = load_lexicon()
    items = padded_articles(args.corpus)
    avg = sum(len((a.title + a.text).encode()) for a, _ in items) / len(items)
    one = best_seconds_per_article(lexicon, items, TARGETS[:1], args.rounds)
    four = best_seconds_per_article(lexicon, items, TARGETS, args.rounds)
    result = {
        "articles": len(items),
        "avg_article_bytes": round(avg),
        "assess_articles_per_s": round(1 / one),
        "assess_us_per_article": round(one * 1e6),
        "four_targets_articles_per_s": round(1 / four),
        "compile_lexicon_ms": round(compile_s * 1e3, 1),
    }
    for k, v in result.items():
        print(f"{k:32s} {v}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
