"""`monitor outbox`: list alerts waiting, failed or rejected, and send them again.

    monitor outbox [--config F] [--status S ...] [--destination NAME] [--json]
    monitor outbox --retry [ID ...]     # no ids: every failed and rejected row

Shows broken destinations too (a deleted Discord webhook, an archived Slack
channel). `--retry` puts rows back to pending and clears the broken mark of
their destinations, so a running daemon sends them on its next pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from monitor.clock import SystemClock
from monitor.config import load_config
from monitor.core.errors import StoreError
from monitor.core.redact import redact
from monitor.core.render import truncate
from monitor.ports import DestinationState, OutboxEntry, OutboxStatus
from monitor.store import open_store

STATUSES: tuple[OutboxStatus, ...] = ("pending", "sending", "failed", "rejected", "sent")
DEFAULT_STATUSES: tuple[OutboxStatus, ...] = ("pending", "sending", "failed", "rejected")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "outbox",
        help="list pending, failed and rejected alerts; retry them",
        description="List the alert outbox and broken destinations; --retry requeues rows.",
    )
    p.add_argument("--config", help="config file (default: embedded defaults)")
    p.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only rows with this status (repeatable; default: all but sent)",
    )
    p.add_argument("--destination", help="only rows for this notifier")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--retry",
        nargs="*",
        type=int,
        metavar="ID",
        help="requeue these rows (none given: every failed and rejected row)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        return asyncio.run(_run(args, config.store.url))
    except StoreError as e:
        print(f"monitor outbox: {redact(str(e))}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, url: str) -> int:
    store = open_store(url)
    await store.open()
    try:
        if args.retry is not None:
            return await _retry(store, args)
        statuses = tuple(args.status) if args.status else DEFAULT_STATUSES
        rows = [
            e
            for e in await store.list_outbox(statuses)
            if args.destination in (None, e.destination)
        ]
        destinations = [
            d for d in await store.load_destinations() if args.destination in (None, d.name)
        ]
        if args.json:
            for e in rows:
                print(json.dumps(entry_json(e), ensure_ascii=False))
            for d in destinations:
                print(json.dumps(destination_json(d), ensure_ascii=False))
        else:
            print(format_table(rows, destinations))
        return 0
    finally:
        await store.close()


async def _retry(store: Any, args: argparse.Namespace) -> int:
    if args.retry:
        wanted = [e for e in await store.list_outbox(STATUSES) if e.id in set(args.retry)]
    else:
        wanted = await store.list_outbox(("failed", "rejected"))
    wanted = [e for e in wanted if args.destination in (None, e.destination)]
    moved = await store.requeue([e.id for e in wanted], SystemClock().now())
    names = {e.destination for e in wanted}
    for d in await store.load_destinations():
        if d.name in names and d.broken:
            d.broken, d.reason = False, None
            await store.save_destination(d)
            print(f"destination {d.name}: broken mark cleared")
    print(f"requeued {moved} of {len(wanted)} row(s)")
    return 0


def entry_json(e: OutboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "destination": e.destination,
        "status": e.status,
        "attempts": e.attempts,
        "created_at": e.created_at.isoformat(),
        "next_attempt_at": e.next_attempt_at.isoformat(),
        "last_error": redact(e.last_error) if e.last_error else None,
        "kind": e.alert.kind,
        "key": e.alert.key,
        "title": e.alert.title,
    }


def destination_json(d: DestinationState) -> dict[str, Any]:
    return {
        "destination": d.name,
        "broken": d.broken,
        "reason": redact(d.reason) if d.reason else None,
        "last_success": d.last_success.isoformat() if d.last_success else None,
        "last_error": redact(d.last_error) if d.last_error else None,
    }


def format_table(rows: list[OutboxEntry], destinations: list[DestinationState]) -> str:
    lines: list[str] = []
    broken = [d for d in destinations if d.broken]
    for d in broken:
        lines.append(f"BROKEN destination {d.name}: {redact(d.reason or 'gone')}")
    if broken:
        lines.append("  fix it, then: monitor outbox --retry --destination NAME")
    if not rows:
        lines.append("outbox: nothing pending, failed or rejected")
        return "\n".join(lines)
    lines.append(
        f"{'ID':>6}  {'DESTINATION':<16} {'STATUS':<9} {'TRIES':>5}  {'NEXT (UTC)':<16}  ALERT"
    )
    for e in rows:
        when = e.next_attempt_at.strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"{e.id:>6}  {truncate(e.destination, 16):<16} {e.status:<9} {e.attempts:>5}  "
            f"{when:<16}  {truncate(e.alert.title, 60)}"
        )
        if e.last_error:
            lines.append(f"{'':>8}error: {truncate(redact(e.last_error), 110)}")
    counts: dict[str, int] = {}
    for e in rows:
        counts[e.status] = counts.get(e.status, 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
