"""Parse speed: our parse path against bare feedparser and fastfeedparser.

All parsers get the same bodies: the ingest benchmark's synthetic 50-item
feeds (~42 KB) and the golden feeds under tests/data/feeds. Reported in
milliseconds per feed (median of rounds):

* ours_cold: `parse_feed` with its caches cleared (a feed seen for the first time);
* ours_warm: `parse_feed` again on the same bodies (an unchanged feed re-parsed);
* ours_feedparser_path: our pipeline forced onto feedparser (the fallback path);
* feedparser: `feedparser.parse(io.BytesIO(body))` with its defaults (sanitising on);
* fastfeedparser: `fastfeedparser.parse(body)`; bytes only, so it never fetches.

    python benchmarks/parse.py [--feeds 100] [--rounds 3]

Our numbers include what the others leave out: charset repair, defusing,
text normalisation, ids and content hashes. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import feedparser  # noqa: E402
from ingest import Feeds  # noqa: E402

from monitor.core.dates import parse_date  # noqa: E402
from monitor.feeds.parse import LAST_BUILT, FeedContext, parse_feed  # noqa: E402

CTX = FeedContext(
    name="bench", url="https://feeds.example.com/x.xml", lang="ko", tz=ZoneInfo("Asia/Seoul")
)


def clear_caches() -> None:
    LAST_BUILT.clear()
    parse_date.cache_clear()


def timed(bodies: list[bytes], fn: Callable[[bytes], object], before: Callable[[], None]) -> float:
    before()
    started = time.perf_counter()
    for body in bodies:
        fn(body)
    return 1000 * (time.perf_counter() - started) / len(bodies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import fastfeedparser
    except ImportError:
        fastfeedparser = None
    bodies = Feeds(args.feeds).bodies
    golden = [p.read_bytes() for p in sorted((ROOT / "tests/data/feeds").glob("*.xml"))]

    def ours(body: bytes) -> object:
        return parse_feed(body, {}, CTX)

    def ours_slow(body: bytes) -> object:
        return parse_feed(body, {}, CTX, fast=False)

    def bare(body: bytes) -> object:
        return feedparser.parse(io.BytesIO(body))

    contenders: dict[str, tuple[Callable[[bytes], object], Callable[[], None]]] = {
        "ours_cold": (ours, clear_caches),
        "ours_warm": (ours, lambda: None),
        "ours_feedparser_path": (ours_slow, clear_caches),
        "feedparser": (bare, lambda: None),
    }
    if fastfeedparser is not None:
        contenders["fastfeedparser"] = (fastfeedparser.parse, lambda: None)
    results: dict[str, float] = {}
    for name, (fn, before) in contenders.items():
        fn(bodies[0])
        rounds = [timed(bodies, fn, before) for _ in range(args.rounds)]
        results[name] = round(statistics.median(rounds), 3)
        print(f"{name:>22}: {results[name]:7.2f} ms/feed  ({1000 / results[name]:6.0f} feeds/s)")
    golden_ok = dict.fromkeys(contenders, 0)
    for body in golden:
        for name, (fn, _) in contenders.items():
            try:
                fn(body)
                golden_ok[name] += 1
            except Exception:  # a contender's failure on a golden feed is a result, not a crash
                pass
    summary = {
        "feeds": args.feeds,
        "feed_bytes": len(bodies[0]),
        "ms_per_feed": results,
        "speedup_vs_feedparser": round(results["feedparser"] / results["ours_cold"], 1),
        "golden_feeds_parsed": golden_ok,
        "golden_feeds": len(golden),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
