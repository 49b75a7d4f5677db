"""Shared pieces of the benchmarks: output conventions, statistics, process
memory, a benchmark rule set, and a feed farm that serves many loopback feeds.

Conventions every benchmark here follows: progress goes to stderr, and the
figures are one JSON object on the last line of stdout (`emit`).

`FeedFarm` is an aiohttp app on 127.0.0.1 serving `/feeds/<name>.xml` with
ETags (so unchanged feeds answer 304). It stamps, for every item, the
monotonic time at which the first response carrying it had been written out
completely: the moment a poll "has fetched" the story. A feed can be made slow
(answers after a delay) or broken (alternates 500 and malformed XML).
`ChildProcess` runs fakes in a spawned process that answers requests over a
pipe (`answer_parent`), so that a benchmark's daemon has its process and event
loop to itself; `loopback_fakes` serves a farm, a fake Discord and a replayed
Yahoo there. `serve_farm` / `FarmProcess` is such a child for benchmarks that
measure the daemon's own process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from aiohttp import web  # noqa: E402

from monitor.clock import OffsetClock  # noqa: E402
from monitor.rulefiles import default_rules_dir  # noqa: E402

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

# 15:45 New York time on 2025-01-27, as in the demo: the replayed NVDA session is live.
REPLAY_START = datetime(2025, 1, 27, 20, 45, tzinfo=UTC)

_T0 = time.monotonic()


# ----------------------------------------------------------------------------- output


def progress(message: str) -> None:
    """One line of progress on stderr, stamped with seconds since start."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """Only errors from the daemon and its scheduler reach stderr, between the progress lines."""
    import logging

    from monitor.logs import setup_logging

    setup_logging("text", "ERROR")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's figures: one JSON line, the last thing on stdout."""
    print(json.dumps(result, ensure_ascii=False), flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100) of a non-empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB."""
    return float(psutil.Process(pid or os.getpid()).memory_info().rss) / (1024 * 1024)


def smaps_rollup_kb(pid: int | None = None) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup as {field: kB} (empty where there is no such file)."""
    try:
        text = Path(f"/proc/{pid or os.getpid()}/smaps_rollup").read_text()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            out[parts[0].rstrip(":")] = int(parts[1])
    return out


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def malloc_info_mb() -> dict[str, float]:
    """glibc's own view of this process's C heap (mallinfo2, every arena), in MiB:
    `heap` obtained from the system (sbrk arenas plus mmapped chunks), `in_use`
    handed out to callers, `free` held in arenas but not in use. Empty off glibc."""
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    info = fn()
    mb = 1024 * 1024
    return {
        "heap": (info.arena + info.hblkhd) / mb,
        "in_use": (info.uordblks + info.hblkhd) / mb,
        "free": info.fordblks / mb,
    }


def pymalloc_stats() -> dict[str, float]:
    """Python's small-object allocator (`sys._debugmallocstats`, read back from fd 2):
    arenas now and at most (1 MiB each), MiB in blocks handed out, and MiB free inside
    the arenas (free blocks plus unused pools). Arenas with free room are what RSS
    keeps after a peak of short-lived objects, until every block in them is free."""
    with tempfile.TemporaryFile(mode="w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition("=")
        if sep and value.strip().replace(",", "").isdigit():
            values[name.strip("# ").strip()] = int(value.strip().replace(",", ""))
    mb = 1024 * 1024
    unused_pools = sum(v for k, v in values.items() if k.endswith("unused pools * 16384 bytes"))
    return {
        "arenas": values.get("arenas allocated current", 0),
        "arenas_highwater": values.get("arenas highwater mark", 0),
        "allocated_mb": round(values.get("bytes in allocated blocks", 0) / mb, 2),
        "free_in_arenas_mb": round(
            (values.get("bytes in available blocks", 0) + unused_pools) / mb, 2
        ),
    }


def baseline_rss_mb(module: str = "monitor.app.daemon") -> float:
    """RSS of a bare interpreter that has imported `module` and nothing else."""
    code = f"import {module}, os, psutil; print(psutil.Process(os.getpid()).memory_info().rss)"
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip()) / (1024 * 1024)


# ----------------------------------------------------------------------------- rules and stories

BENCH_RULE = """
[[rule]]
id = "bench-nvidia"
title = "Benchmark: every Nvidia story"
description = "Fires on every story that names Nvidia, with no cooldown, so each is an alert."
severity = "notice"
cooldown = 0
[rule.when]
any = ["nvidia"]
"""


_RULES_SNAPSHOT: list[Path] = []


def snapshot_rules() -> Path:
    """A copy of the bundled rules taken once per process (at the first call), so
    that every daemon a benchmark starts runs the rules that match the code it
    imported, even if the files change while it runs."""
    if not _RULES_SNAPSHOT:
        snapshot = Path(tempfile.mkdtemp(prefix="bench-rules-")) / "rules"
        shutil.copytree(default_rules_dir(), snapshot, symlinks=False)
        atexit.register(shutil.rmtree, snapshot.parent, True)
        _RULES_SNAPSHOT.append(snapshot)
    return _RULES_SNAPSHOT[0]


def bench_rules(dest: Path) -> Path:
    """The bundled rules (see `snapshot_rules`) plus one rule with no cooldown that
    fires on any Nvidia story."""
    shutil.copytree(snapshot_rules(), dest, symlinks=False)
    (dest / "zz-bench.toml").write_text(BENCH_RULE, encoding="utf-8")
    return dest


_VOCAB = [
    "lantern",
    "harbor",
    "quartz",
    "orbit",
    "meadow",
    "falcon",
    "ember",
    "canyon",
    "willow",
    "cobalt",
    "prism",
    "summit",
    "delta",
    "raven",
    "cedar",
    "glacier",
    "mosaic",
    "beacon",
    "tundra",
    "saffron",
    "velvet",
    "anchor",
    "copper",
    "zephyr",
    "marble",
    "thistle",
    "juniper",
    "onyx",
    "lagoon",
    "pebble",
    "nectar",
    "ivory",
    "basalt",
    "compass",
    "harvest",
    "meteor",
    "sparrow",
    "tempest",
    "violet",
    "walnut",
    "yonder",
    "zenith",
    "bramble",
    "cascade",
    "dune",
    "fjord",
    "garnet",
    "heron",
    "island",
    "jasper",
    "kestrel",
    "lotus",
]
_VERBS = ["slide", "jump", "slip", "climb", "drop", "rally", "sink", "rise", "fall", "surge"]


def story_title(serial: int, rng: random.Random, matching: bool = True) -> str:
    """A headline no other serial's headline clusters with: its own percentage
    and its own words. `matching` headlines name Nvidia; the others name nothing
    the rules know."""
    words = " ".join(rng.sample(_VOCAB, 5))
    pct = f"{1 + serial / 100:.2f}%"
    if matching:
        return f"Nvidia shares {rng.choice(_VERBS)} {pct} on {words} report {serial}"
    return f"Regional {words} index moves {pct} in session {serial}"


def story_text(matching: bool) -> str:
    if matching:
        return "Nvidia stock moved in late trading as investors weighed AI chip demand."
    return "Local markets were quiet; the council met to discuss the harbour budget."


# ----------------------------------------------------------------------------- the feed farm


@dataclass
class FarmFeed:
    name: str
    kind: str = "normal"  # normal | slow | broken
    items: list[dict[str, str]] = field(default_factory=list)  # newest first
    version: int = 0
    body: bytes = b""
    requests: int = 0


def render_rss(name: str, items: Sequence[dict[str, str]]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(name)}</title><link>http://127.0.0.1/</link>",
        "<description>benchmark wire</description>",
    ]
    for it in items:
        parts.append(
            f"<item><title>{escape(it['title'])}</title>"
            f"<link>{escape(it['link'])}</link>"
            f'<guid isPermaLink="false">{escape(it["guid"])}</guid>'
            f"<pubDate>{it['pubDate']}</pubDate>"
            f"<description>{escape(it['description'])}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def farm_url(port: int, name: str) -> str:
    """The address of feed `name` on a farm serving on `port`."""
    return f"http://127.0.0.1:{port}/feeds/{name}.xml"


class FeedFarm:
    """Many feeds on one loopback port. `now` dates the items (the daemon's clock)."""

    def __init__(self, now: Callable[[], datetime], *, keep: int = 20, slow_s: float = 8.0) -> None:
        self.now = now
        self.keep = keep
        self.slow_s = slow_s
        self.feeds: dict[str, FarmFeed] = {}
        self.sent_at: dict[str, float] = {}  # guid -> monotonic time its first body was out
        self.published_at: dict[str, float] = {}  # guid -> monotonic time it was appended
        self.statuses: Counter[int] = Counter()
        self._unsent: dict[str, list[str]] = {}  # feed -> guids not yet sent
        self._serial = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add(self, name: str, kind: str = "normal", items: int = 0, seed: int = 0) -> None:
        feed = self.feeds[name] = FarmFeed(name, kind)
        self._unsent[name] = []
        rng = random.Random(seed)
        for _ in range(items):
            self.publish(name, story_title(self._serial, rng, matching=False), stamp=False)
        feed.body = render_rss(name, feed.items)

    def url(self, name: str) -> str:
        return farm_url(self.port, name)

    def publish(self, name: str, title: str, description: str = "", *, stamp: bool = True) -> str:
        """Append a story to a feed now; returns its guid."""
        self._serial += 1
        feed = self.feeds[name]
        guid = f"{name}-{self._serial}"
        feed.items.insert(
            0,
            {
                "title": title,
                "link": f"http://127.0.0.1/articles/{guid}",
                "guid": guid,
                "pubDate": format_datetime(self.now() - timedelta(seconds=30)),
                "description": description,
            },
        )
        del feed.items[self.keep :]
        feed.version += 1
        feed.body = render_rss(name, feed.items)
        if stamp:
            self.published_at[guid] = time.monotonic()
            self._unsent[name].append(guid)
        return guid

    def hits(self) -> int:
        return sum(f.requests for f in self.feeds.values())

    def polled(self) -> int:
        """How many feeds have been asked for at least once."""
        return sum(1 for f in self.feeds.values() if f.requests)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        feed = self.feeds.get(name)
        if feed is None:
            return web.Response(status=404, text="no such feed")
        feed.requests += 1
        if feed.kind == "slow":
            await asyncio.sleep(self.slow_s)
        if feed.kind == "broken":
            if feed.requests % 2:
                self.statuses[500] += 1
                return web.Response(status=500, text="internal error")
            self.statuses[200] += 1
            return web.Response(
                body=b"<?xml version='1.0'?><rss><channel><item><title>cut off",
                content_type="application/rss+xml",
            )
        etag = f'"{feed.version}"'
        if request.headers.get("If-None-Match") == etag:
            self.statuses[304] += 1
            return web.Response(status=304, headers={"ETag": etag})
        self.statuses[200] += 1
        resp = web.StreamResponse(
            headers={"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"}
        )
        resp.content_length = len(feed.body)
        await resp.prepare(request)
        await resp.write(feed.body)
        await resp.write_eof()
        done = time.monotonic()
        for guid in self._unsent[name]:
            self.sent_at.setdefault(guid, done)
        self._unsent[name].clear()
        return resp

    async def start(self) -> FeedFarm:
        app = web.Application()
        app.router.add_get("/feeds/{name}.xml", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# ----------------------------------------------------------------------------- a server process


@contextlib.asynccontextmanager
async def loopback_fakes(
    clock: OffsetClock, farm: FeedFarm, discord: FakeDiscord
) -> AsyncIterator[dict[str, Any]]:
    """Serve `farm`, `discord` and a Yahoo replaying NVDA on 2025-01-27 (at `clock`)
    on loopback ports; yields their addresses (`farm_port`, `discord_url`,
    `yahoo_url`) and stops all three on the way out."""
    from monitor.demo.price_server import make_yahoo_app, nvda_2025_01_27

    await farm.start()
    try:
        async with discord:
            yahoo = web.AppRunner(make_yahoo_app([nvda_2025_01_27()], clock), access_log=None)
            await yahoo.setup()
            try:
                await web.TCPSite(yahoo, "127.0.0.1", 0).start()
                yield {
                    "farm_port": farm.port,
                    "discord_url": discord.url,
                    "yahoo_url": f"http://127.0.0.1:{yahoo.addresses[0][1]}",
                }
            finally:
                await yahoo.cleanup()
    finally:
        await farm.stop()


STOP = "stop"


async def answer_parent(conn: Connection, handle: Callable[[Any], Awaitable[Any]]) -> None:
    """In a child process: answer each request the parent sends on `conn` with
    `await handle(request)`, one at a time and in order, until it sends `STOP` or
    goes away. The event loop reads the pipe itself (no thread, no polling), so a
    request is handled as soon as it arrives, between the fakes' own callbacks."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    fd = conn.fileno()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(fd)
            inbox.put_nowait(STOP)

    loop.add_reader(fd, readable)
    try:
        while (request := await inbox.get()) != STOP:
            conn.send(await handle(request))
    finally:
        loop.remove_reader(fd)


class ChildProcess:
    """`with ChildProcess(target, spec) as child:` runs `target(spec, conn)` in a
    spawned process. The target sends one message once it serves (kept in
    `child.info`), then answers requests, typically with `answer_parent`.

    Benchmarks put their fakes in such a child so that the daemon they measure has
    its process, its event loop and, as far as the OS allows, a core to itself."""

    def __init__(self, target: Callable[[Any, Connection], None], spec: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=target, args=(spec, child), daemon=True)
        self._lock = threading.Lock()
        self._pipe_thread: ThreadPoolExecutor | None = None
        self.info: Any = None

    def __enter__(self) -> Self:
        self._proc.start()
        if not self._conn.poll(60):
            raise RuntimeError("child process did not start serving within 60 s")
        self.info = self._conn.recv()
        return self

    def call(self, request: Any, timeout: float = 10.0) -> Any:
        """Send `request` and wait for the answer (TimeoutError after `timeout` s)."""
        with self._lock:
            self._conn.send(request)
            if not self._conn.poll(timeout):
                raise TimeoutError(f"no answer to {request!r} within {timeout} s")
            return self._conn.recv()

    async def acall(self, request: Any, timeout: float = 10.0) -> Any:
        """`call` from a coroutine: the round trip waits on a thread of its own, so
        the event loop it is awaited on (the measured daemon's) runs meanwhile."""
        if self._pipe_thread is None:
            self._pipe_thread = ThreadPoolExecutor(1, thread_name_prefix="child-pipe")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pipe_thread, self.call, request, timeout)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(STOP)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._pipe_thread is not None:
            self._pipe_thread.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class FarmSpec:
    """What `serve_farm` serves: `feeds` feeds, of which every `change_every`-th
    gains an item each `round_s` (one in `match_every` of those names Nvidia),
    feed 0 slow and feed 1 broken when asked."""

    feeds: int
    items: int = 20
    round_s: float = 10.0
    change_every: int = 10
    match_every: int = 4
    slow: bool = True
    broken: bool = True
    slow_s: float = 8.0


def farm_name(i: int) -> str:
    return f"f{i:04d}"


def _kind(spec: FarmSpec, i: int) -> str:
    if spec.slow and i == 0:
        return "slow"
    if spec.broken and i == 1:
        return "broken"
    return "normal"


async def _farm_main(spec: FarmSpec, conn: Connection) -> None:
    from tests.fakes.discord_server import FakeDiscord

    clock = OffsetClock(REPLAY_START)
    farm = FeedFarm(clock.now, keep=spec.items, slow_s=spec.slow_s)
    for i in range(spec.feeds):
        farm.add(farm_name(i), _kind(spec, i), items=spec.items, seed=i)
    discord = FakeDiscord()
    posts = 0

    async def counters(_request: Any) -> dict[str, Any]:
        nonlocal posts
        # Bodies are not needed once counted; keep the fake's own memory flat.
        posts += len(discord.delivered())
        discord.received = [r for r in discord.received if r.status == 0]
        discord.messages.clear()
        return {
            "hits": farm.hits(),
            "polled": farm.polled(),
            "statuses": dict(farm.statuses),
            "discord_posts": posts,
        }

    async def rounds() -> None:
        changing = [farm_name(i) for i in range(2, spec.feeds) if i % spec.change_every == 2]
        rng = random.Random(11)
        serial = 0
        next_round = time.monotonic() + spec.round_s
        while True:
            await asyncio.sleep(next_round - time.monotonic())
            next_round += spec.round_s
            for name in changing:
                serial += 1
                match = serial % spec.match_every == 0
                farm.publish(name, story_title(serial, rng, match), story_text(match))

    async with loopback_fakes(clock, farm, discord) as info:
        conn.send(info)
        publisher = asyncio.create_task(rounds())
        try:
            await answer_parent(conn, counters)
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher


def serve_farm(spec: FarmSpec, conn: Connection) -> None:
    """Child-process entry: serve until the parent sends "stop"."""
    asyncio.run(_farm_main(spec, conn))


class FarmProcess(ChildProcess):
    """`with FarmProcess(spec) as farm:` a `serve_farm` child; `farm.info` has its URLs."""

    def __init__(self, spec: FarmSpec) -> None:
        super().__init__(serve_farm, spec)
        self.spec = spec

    def counters(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.call("counters")
        except TimeoutError:
            return {}
        return result

    def feed_url(self, i: int) -> str:
        return farm_url(self.info["farm_port"], farm_name(i))
