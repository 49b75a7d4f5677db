"""Parsing with a bound on time (and, for big bodies, memory).

Small bodies (up to `INLINE_BYTES`) that the fast path reads are parsed on the
event loop itself: expat over a defused body costs a few milliseconds at most at
that size, and the worker thread would hold the interpreter's lock for as long
anyway, only with a hand-off to it and back on a story's way to its alert.
Ordinary bodies (under `ISOLATE_BYTES`), and the small ones the fast path
declines, are parsed in a worker thread and abandoned after `timeout`: with DTDs
stripped and entity declarations refused, feedparser's worst case on such a body
is about a second of CPU. Bigger bodies are parsed in a child process
(`python -m monitor.feeds.worker`) that limits its own address space and is
killed when the time is up, because a thread cannot be stopped.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from monitor.core.errors import FeedParseError
from monitor.feeds.parse import FeedContext, ParsedFeed, parse_feed, parse_feed_fast

ISOLATE_BYTES = 512 * 1024  # feedparser needs ~1 s of CPU on the worst such body
INLINE_BYTES = 64 * 1024  # the fast path reads such a body in about 3 ms at most
PARSE_THREADS = 2

_executor: ThreadPoolExecutor | None = None


def _parse_threads() -> ThreadPoolExecutor:
    # Few threads on purpose: parsing holds the GIL, and every extra CPU-bound
    # thread is one more the event loop must win the lock from. Two, so that one
    # slow body does not hold up the rest.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="feed-parse")
    return _executor


async def parse_bounded(
    body: bytes,
    headers: Mapping[str, str],
    ctx: FeedContext,
    *,
    timeout: float,
    isolate_bytes: int = ISOLATE_BYTES,
    inline_bytes: int = INLINE_BYTES,
) -> ParsedFeed:
    """Parse a feed body; FeedParseError on bad input or when `timeout` passes."""
    if len(body) > isolate_bytes:
        return await _in_process(body, dict(headers), ctx, timeout)
    try:
        fast = True
        if len(body) <= inline_bytes:
            parsed = parse_feed_fast(body, headers, ctx)
            if parsed is not None:
                return parsed
            fast = False  # declined: feedparser's turn, in the thread
        loop = asyncio.get_running_loop()
        # A timeout scope rather than wait_for: the result reaches this task one loop
        # turn sooner (no waiter future between the thread's future and the task).
        async with asyncio.timeout(timeout):
            return await loop.run_in_executor(
                _parse_threads(), partial(parse_feed, fast=fast), body, dict(headers), ctx
            )
    except TimeoutError as e:
        raise FeedParseError(f"parsing took longer than {timeout:g}s") from e
    except FeedParseError:
        raise
    except (ValueError, TypeError, LookupError, RecursionError, MemoryError) as e:
        raise FeedParseError(f"unparseable feed: {type(e).__name__}: {e}") from e


async def _in_process(
    body: bytes, headers: dict[str, str], ctx: FeedContext, timeout: float
) -> ParsedFeed:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.feeds.worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    payload = pickle.dumps((body, headers, ctx), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(payload), timeout)
    except TimeoutError as e:
        raise FeedParseError(f"parsing took longer than {timeout:g}s") from e
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0 or not out:
        raise FeedParseError(f"parser process failed (exit {proc.returncode})")
    # The child is our own code; its pickle is as trusted as this process.
    kind, value = pickle.loads(out)
    if kind == "ok" and isinstance(value, ParsedFeed):
        return value
    raise FeedParseError(str(value))
