"""`monitor health`: asks a running daemon whether it is alive (or ready); exit 0 or 1.

Meant for Docker's HEALTHCHECK. Reads the health host and port from the config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp

from monitor.config import load_config


def register(sub: Any) -> None:
    p = sub.add_parser("health", help="exit 0 if the running daemon answers its health check")
    p.add_argument("--config", help="config file (default: embedded defaults)")
    p.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    p.set_defaults(func=run)


async def _probe(url: str, timeout: float) -> tuple[int, str]:
    t = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=t) as session, session.get(url) as resp:
        return resp.status, await resp.text()


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    host = cfg.health.host if cfg.health.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{cfg.health.port}/{'readyz' if args.ready else 'healthz'}"
    try:
        status, body = asyncio.run(_probe(url, args.timeout))
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        print(f"unhealthy: {url}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(body)
    return 0 if status == 200 else 1
