"""Story matching with a full story window: is a new article a rewrite of a held story?

    python benchmarks/stories.py [--quick] [--stories N]

Builds a window of N stories (default 10,000, the most the alert builder keeps)
from mixed Korean / English headlines, then times `find_story` for fresh headlines
(about a third of them rewrites of a held story) two ways in one run: the plain
scan, which builds every held title's bigrams for every article, and through a
`TitleIndex` of the window, as the alert builder does. Both must agree on every
headline. CPU time of this process; medians over the headlines. The last line
printed is one JSON object: plain_ms, indexed_ms (per headline), speedup, stories,
headlines, index_build_ms, and held_bytes_per_story: the memory the alert builder
holds per story of its window (the story as read back from the store, and its place
in the title index), measured with tracemalloc.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, progress

from monitor.app.alerts import story_from_record, story_to_record
from monitor.core.models import Lang, SourceRef
from monitor.core.stories import Story, TitleIndex, find_story, new_story
from monitor.ports import StoryRecord

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


def held_bytes(stories: list[Story]) -> float:
    """Bytes per story of the window as the alert builder holds it: each story read
    back from a store record (fresh strings, as a database read gives) and indexed."""
    rows = []
    for s in stories:
        r = story_to_record(s)
        rows.append((json.dumps([r.key, r.title_norm, r.sources, r.figures]), r.first_seen))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    records = []
    for row, first_seen in rows:
        key, title_norm, sources, figures = json.loads(row)
        records.append(StoryRecord(key, title_norm, first_seen, tuple(sources), tuple(figures)))
    held = {r.key: story_from_record(r) for r in records}
    index = TitleIndex()
    index.retain(held)
    del records
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / len(stories)


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
    per_story = held_bytes(stories)
    progress(f"held: {per_story:.0f} bytes per story, {per_story * n / 2**20:.1f} MB for {n}")
    emit(
        {
            "stories": n,
            "headlines": len(probes),
            "matched": found,
            "plain_ms": round(plain, 3),
            "indexed_ms": round(indexed, 3),
            "speedup": round(plain / indexed, 1) if indexed else None,
            "index_build_ms": round(build_ms, 1),
            "held_bytes_per_story": round(per_story),
        }
    )


if __name__ == "__main__":
    main()
