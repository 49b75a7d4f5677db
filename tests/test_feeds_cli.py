"""`monitor poll --once` and `monitor feeds` as a user runs them, against local feed servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fakes.feed_server import FeedServer, status


def rss(prefix: str, n: int) -> bytes:
    items = "".join(
        f"<item><title>[속보] {prefix} 기사 {i}</title>"
        f"<link>https://news.example.com/{prefix}/{i}</link>"
        f"<description>&lt;p&gt;{prefix} 요약 {i}&lt;/p&gt;</description>"
        f"<pubDate>2025.01.30 18:{i:02d}</pubDate></item>"
        for i in range(n)
    )
    return f'<rss version="2.0"><channel><title>{prefix}</title>{items}</channel></rss>'.encode()


def write_config(tmp: Path, server: FeedServer, names: list[str], extra: str = "") -> Path:
    feeds = "".join(
        f'\n[[feeds]]\nname = "{n}"\nurl = "{server.url("/" + n + ".xml")}"\nlang = "ko"\n'
        f'timezone = "Asia/Seoul"\nbackfill = true\n{extra}'
        for n in names
    )
    path = tmp / "config.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp}/monitor.db"\n\n'
        "[fetch]\nallow_private_networks = true\ntotal_timeout = 10\n"
        f"concurrency = 64\nper_host_concurrency = 64\n{feeds}",
        encoding="utf-8",
    )
    return path


async def monitor(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "--log-level", "ERROR", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


async def test_poll_once_json_then_nothing_new(server: FeedServer, tmp_path: Path) -> None:
    server.add("/hk.xml", rss("hk", 2), etag='"1"')
    server.add("/yn.xml", rss("yn", 1))
    server.handle("/down.xml", status(503))
    config = write_config(tmp_path, server, ["hk", "yn", "down"])
    code, out, err = await monitor("poll", "--once", "--json", "--config", str(config))
    assert code == 0
    rows = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["link"])
    assert rows[0] == {
        "feed": "hk",
        "title": "[속보] hk 기사 0",
        "link": "https://news.example.com/hk/0",
        "published": "2025-01-30T09:00:00Z",
        "lang": "ko",
        "summary": "hk 요약 0",
    }
    assert [r["feed"] for r in rows] == ["hk", "hk", "yn"]
    assert err.strip().splitlines() == ["feed down: error: HTTP 503 Service Unavailable"]
    code, out, err = await monitor("poll", "--once", "--json", "--config", str(config))
    assert (code, out) == (0, "")
    assert "feed down" in err

    code, out, _ = await monitor("feeds", "--config", str(config))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["feed", "status", "last_success"]
    table = {line.split()[0]: line.split() for line in lines[1:]}
    assert table["hk"][1] == "ok" and table["down"][1] == "failing"
    assert "503" in out
    code, out, _ = await monitor("feeds", "--json", "--config", str(config))
    health = {r["feed"]: r for r in map(json.loads, out.splitlines())}
    assert health["down"]["failures"] == 2 and health["hk"]["items"] == 2


async def test_plain_output_and_invalid_config(server: FeedServer, tmp_path: Path) -> None:
    server.add("/hk.xml", rss("hk", 1))
    config = write_config(tmp_path, server, ["hk"])
    code, out, _ = await monitor("poll", "--once", "--config", str(config))
    assert code == 0
    assert (
        out.strip() == "2025-01-30T09:00:00Z  [hk] [속보] hk 기사 0  https://news.example.com/hk/0"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[[feeds]]\nname = "x"\nurl = "ftp://nope"\n', encoding="utf-8")
    code, out, err = await monitor("poll", "--once", "--config", str(bad))
    assert code == 1 and out == "" and "feeds.0.url" in err


async def test_kill_9_during_a_poll_then_restart(server: FeedServer, tmp_path: Path) -> None:
    gate = asyncio.Event()
    fast = [f"a{i}" for i in range(30)]
    slow = [f"b{i}" for i in range(30)]
    for name in fast:
        server.add(f"/{name}.xml", rss(name, 3))
    for name in slow:

        async def held(request: web.Request, name: str = name) -> web.StreamResponse:
            await gate.wait()
            return web.Response(body=rss(name, 3), content_type="application/rss+xml")

        server.handle(f"/{name}.xml", held)
    config = write_config(tmp_path, server, fast + slow)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "--log-level", "ERROR",
        "poll", "--once", "--json", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=None,
    )  # fmt: skip
    assert proc.stdout is not None
    before: list[str] = []
    while len(before) < 90:  # every answering feed printed; the others are mid-request
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line, "poll ended early"
        before.append(json.loads(line)["link"])
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    gate.set()
    code, out, _ = await monitor("poll", "--once", "--json", "--config", str(config))
    after = [json.loads(line)["link"] for line in out.splitlines()]
    assert code == 0
    assert not set(before) & set(after)  # nothing reported twice
    expected = {f"https://news.example.com/{n}/{i}" for n in fast + slow for i in range(3)}
    assert set(before) | set(after) == expected  # nothing lost
    assert len(before) + len(after) == len(expected)
