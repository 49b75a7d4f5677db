"""`monitor feeds`: each configured feed's health as a table (or JSON lines)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.core.dates import to_utc_z
from monitor.core.durations import format_duration
from monitor.ports import FeedState
from monitor.store import open_store

COLUMNS = ("feed", "status", "last_success", "failures", "next_poll", "interval", "items", "error")


def register(sub: Any) -> None:
    p = sub.add_parser("feeds", help="show each feed's health")
    p.add_argument("--config", help="config file (default: embedded defaults)")
    p.add_argument("--json", action="store_true", help="one JSON object per feed")
    p.set_defaults(func=run)


def _when(value: datetime | None) -> str:
    return to_utc_z(value.replace(microsecond=0)) if value else "-"


def status_of(state: FeedState | None, enabled: bool) -> str:
    if not enabled:
        return "disabled"
    if state is None or (state.last_success is None and state.consecutive_failures == 0):
        return "new"
    if state.consecutive_failures:
        return "failing"
    return "ok"


def feed_rows(config: Config, states: list[FeedState]) -> list[dict[str, Any]]:
    by_name = {s.name: s for s in states}
    rows = []
    for f in config.feeds:
        s = by_name.get(f.name)
        rows.append(
            {
                "feed": f.name,
                "status": status_of(s, f.enabled),
                "last_success": _when(s.last_success if s else None),
                "failures": s.consecutive_failures if s else 0,
                "next_poll": _when(s.next_poll_at if s else None),
                "interval": format_duration(s.interval_s if s and s.interval_s else f.interval),
                "items": s.items_total if s else 0,
                "error": (s.last_error or "") if s else "",
            }
        )
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [[str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in cells:
        head = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False))
        lines.append(f"{head}  {row[-1]}".rstrip())
    return "\n".join(lines)


async def _load(config: Config) -> list[FeedState]:
    store = open_store(config.store.url, instance_id=config.store.instance_id, clock=SystemClock())
    async with store:
        return await store.load_feed_states()


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows = feed_rows(config, asyncio.run(_load(config)))
    if args.json:
        for r in rows:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        print(render_table(rows))
    return 0
