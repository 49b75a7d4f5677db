"""Story matching with a full story window: is a new article a rewrite of a held story?

    python benchmarks/stories.py [--quick] [--stories N]

Builds a window of N stories (default 10,000, the most the alert builder keeps)
from mixed Korean / English headlines, then times `find_story` for fresh headlines
(about a third of them rewrites of a held story) two ways in one run: the plain
scan, which builds every held title's bigrams for every article, and through a
`TitleIndex` of the window, as the alert builder does. Both must agree on every
headline. CPU time of this process; medians over the headlines. The last line
printed is one JSON object: plain_ms, indexed_ms (per headline), speedup, stories,
headlines, index_build_ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, progress

from monitor.core.models import Lang, SourceRef
from monitor.core.stories import Story, TitleIndex, find_story, new_story

NOW = datetime(2025, 1, 27, 21, 0, tzinfo=UTC)
KO = [
    "엔비디아",
    "주가",
    "급락",
    "딥시크",
    "충격",
    "AI",
    "반도체",
    "투자",
    "심리",
    "위축",
    "삼성전자",
    "SK하이닉스",
    "HBM",
    "공급",
    "확대",
    "수출",
    "통제",
    "강화",
    "TSMC",
    "설비투자",
    "블랙웰",
    "출하",
    "지연",
    "실적",
    "가이던스",
    "상향",
    "빅테크",
]
EN = [
    "Nvidia",
    "shares",
    "plunge",
    "slide",
    "rally",
    "DeepSeek",
    "cheap",
    "model",
    "export",
    "curbs",
    "China",
    "H20",
    "TSMC",
    "capex",
    "raise",
    "Blackwell",
    "delay",
    "ramp",
    "HBM",
    "supply",
    "hyperscaler",
    "spending",
    "guidance",
    "beat",
    "miss",
]


def headline(rng: random.Random) -> tuple[str, Lang]:
    lang: Lang = rng.choice(("ko", "en"))
    words = rng.sample(KO if lang == "ko" else EN, rng.randint(5, 9))
    if rng.random() < 0.3:
        words.append(f"{rng.randint(1, 30)}.{rng.randint(0, 99):02d}%")
    return " ".join(words), lang


def window(rng: random.Random, n: int) -> list[Story]:
    stories = []
    for i in range(n):
        title, lang = headline(rng)
        ref = SourceRef(f"feed-{i % 50}", "outlet", title, f"https://news.example/{i}", lang)
        stories.append(new_story(title, NOW - timedelta(seconds=i * 10), ref))
    return stories


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 stories, 100 headlines")
    p.add_argument("--stories", type=int, default=None)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    n = args.stories or (2000 if args.quick else 10_000)
    rng = random.Random(args.seed)
    stories = window(rng, n)
    probes: list[tuple[str, Lang]] = []
    for _ in range(100 if args.quick else 300):
        if rng.random() < 0.35:  # a rewrite: a held title with a word dropped and a tag
            held = rng.choice(stories)
            words = held.sources[0].title.split()
            words.pop(rng.randrange(len(words)))
            probes.append(("[종합] " + " ".join(words), held.sources[0].lang))
        else:
            probes.append(headline(rng))
    progress(f"stories: window of {n}, {len(probes)} headlines")

    t0 = time.process_time()
    index = TitleIndex()
    for story in stories:
        index.add(story)
    build_ms = (time.process_time() - t0) * 1000

    plain_ms, indexed_ms, found = [], [], 0
    window_s = 36 * 3600.0
    for title, lang in probes:
        t0 = time.process_time()
        a = find_story(title, stories, NOW, window_s, lang=lang)
        t1 = time.process_time()
        b = find_story(title, stories, NOW, window_s, lang=lang, index=index)
        t2 = time.process_time()
        if a is not b:
            raise SystemExit(f"indexed and plain find_story disagree on {title!r}")
        found += a is not None
        plain_ms.append((t1 - t0) * 1000)
        indexed_ms.append((t2 - t1) * 1000)
    plain, indexed = statistics.median(plain_ms), statistics.median(indexed_ms)
    progress(f"plain {plain:.2f} ms, indexed {indexed:.3f} ms per headline; {found} matched")
    emit(
        {
            "stories": n,
            "headlines": len(probes),
            "matched": found,
            "plain_ms": round(plain, 3),
            "indexed_ms": round(indexed, 3),
            "speedup": round(plain / indexed, 1) if indexed else None,
            "index_build_ms": round(build_ms, 1),
        }
    )


if __name__ == "__main__":
    main()
