"""The latency, memory and soak benchmarks still run: each in its `--smoke` size,
all three at once, and each ends with one JSON line carrying its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("latency", "memory", "soak")


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[int, str, str]]:
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--smoke"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in BENCHMARKS
    }
    out: dict[str, tuple[int, str, str]] = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=50)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[name] = (proc.returncode, stdout, stderr)
    return out


def last_json(results: dict[str, tuple[int, str, str]], name: str) -> dict[str, Any]:
    code, stdout, stderr = results[name]
    assert code == 0, f"{name} exited {code}:\n{stderr[-3000:]}"
    lines = stdout.strip().splitlines()
    assert lines, f"{name} printed nothing on stdout:\n{stderr[-3000:]}"
    value = json.loads(lines[-1])
    assert isinstance(value, dict)
    return value


def test_latency_reports_both_latencies_for_every_story(results: Any) -> None:
    r = last_json(results, "latency")
    for key in (
        "fetch_to_ack_p50_ms",
        "fetch_to_ack_p99_ms",
        "publish_to_delivery_p50_s",
        "publish_to_delivery_p99_s",
        "feed_interval_s",
        "stories",
    ):
        assert key in r, key
    assert r["fetch_to_ack"]["delivered"] == r["fetch_to_ack"]["stories"] > 0
    assert r["publish_to_delivery"]["delivered"] == r["publish_to_delivery"]["stories"] > 0
    assert 0 < r["fetch_to_ack_p50_ms"] <= r["fetch_to_ack_p99_ms"]
    # A story cannot reach Discord before the feed is polled, nor wait many intervals.
    assert 0 < r["publish_to_delivery_p50_s"] <= r["feed_interval_s"] * 3 + 2


def test_memory_measures_the_daemon_process_after_the_first_poll(results: Any) -> None:
    r = last_json(results, "memory")
    for key in ("rss_mb", "feeds", "seen_items", "baseline_rss_mb", "baseline_monitor_rss_mb"):
        assert key in r, key
    assert r["feeds"] == 20 and r["seen_items"] == 2000
    # The daemon holds more than a bare `import monitor`.
    assert r["rss_mb"] > r["baseline_monitor_rss_mb"] > 0


def test_soak_samples_the_running_daemon(results: Any) -> None:
    r = last_json(results, "soak")
    for key in (
        "rss_start_mb",
        "rss_end_mb",
        "rss_max_mb",
        "tasks_start",
        "tasks_end",
        "alerts_delivered",
        "minutes",
    ):
        assert key in r, key
    assert r["rss_start_mb"] <= r["rss_max_mb"] and r["rss_end_mb"] <= r["rss_max_mb"]
    assert r["tasks_start"] > 0 and r["tasks_end"] > 0
    # Feeds were polled more than once each, and the broken one was answered with 500.
    assert r["feed_fetches"] > r["feeds"]
    assert r["feed_statuses"].get("500", 0) >= 1
    assert r["alerts_delivered"] >= 1
