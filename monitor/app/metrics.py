"""Process metrics in the Prometheus text exposition format (version 0.0.4).

A deliberately small registry: counters, gauges and histograms with labels,
rendered by `Registry.render()`. One `Metrics` instance names everything the
daemon reports, so each metric is declared once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    items = [*labels, *extra]
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass
class _Metric:
    name: str
    help: str
    kind: str
    label_names: tuple[str, ...]

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {list(self.label_names)}")
        return tuple((k, str(labels[k])) for k in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


@dataclass
class Counter(_Metric):
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self.values.items())]


@dataclass
class Gauge(_Metric):
    values: dict[Labels, float] = field(default_factory=dict)

    def set(self, value: float, **labels: str) -> None:
        self.values[self._key(labels)] = value

    def get(self, **labels: str) -> float | None:
        return self.values.get(self._key(labels))

    def render(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self.values.items())]


@dataclass
class _Series:
    buckets: list[int]
    count: int = 0
    total: float = 0.0


@dataclass
class Histogram(_Metric):
    bounds: tuple[float, ...] = ()
    series: dict[Labels, _Series] = field(default_factory=dict)

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series([0] * len(self.bounds))
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                s.buckets[i] += 1
        s.count += 1
        s.total += value

    def count(self, **labels: str) -> int:
        s = self.series.get(self._key(labels))
        return s.count if s else 0

    def render(self) -> list[str]:
        out: list[str] = []
        for key, s in sorted(self.series.items()):
            for bound, n in zip(self.bounds, s.buckets, strict=True):
                out.append(f"{self.name}_bucket{_labels(key, [('le', _num(bound))])} {n}")
            out.append(f"{self.name}_bucket{_labels(key, [('le', '+Inf')])} {s.count}")
            out.append(f"{self.name}_sum{_labels(key)} {_num(s.total)}")
            out.append(f"{self.name}_count{_labels(key)} {s.count}")
        return out


class Registry:
    """Holds metrics in declaration order and renders them."""

    def __init__(self) -> None:
        self._metrics: list[Counter | Gauge | Histogram] = []

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        m = Counter(name, help, "counter", tuple(labels))
        self._metrics.append(m)
        return m

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        m = Gauge(name, help, "gauge", tuple(labels))
        self._metrics.append(m)
        return m

    def histogram(
        self, name: str, help: str, bounds: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        m = Histogram(name, help, "histogram", tuple(labels), tuple(sorted(bounds)))
        self._metrics.append(m)
        return m

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics:
            lines += m.header()
            lines += m.render()
        return "\n".join(lines) + "\n"


_LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


class Metrics:
    """Every metric the daemon exports, declared in one place."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.feed_fetches = r.counter(
            "monitor_feed_fetches_total", "Feed fetches by outcome.", ["feed", "outcome"]
        )
        self.feed_fetch_seconds = r.histogram(
            "monitor_feed_fetch_seconds",
            "Time to fetch and parse one feed.",
            (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            ["feed"],
        )
        self.feed_failures = r.gauge(
            "monitor_feed_consecutive_failures", "Consecutive failures per feed.", ["feed"]
        )
        self.items_seen = r.counter("monitor_items_seen_total", "New items seen.", ["feed"])
        self.matches = r.counter("monitor_rule_matches_total", "Articles matched.", ["rule"])
        self.alerts = r.counter(
            "monitor_alerts_total", "Delivery attempts by outcome.", ["destination", "outcome"]
        )
        self.outbox_depth = r.gauge("monitor_outbox_depth", "Alerts waiting to be delivered.")
        self.delivery_latency = r.histogram(
            "monitor_publish_to_delivery_seconds",
            "From the article's publish (or first-seen) time to delivery.",
            _LATENCY_BOUNDS,
            ["destination"],
        )
        self.price_staleness = r.gauge(
            "monitor_price_staleness_seconds", "Seconds since the last price tick.", ["symbol"]
        )
        self.price_ticks = r.counter(
            "monitor_price_ticks_total", "Price ticks received.", ["provider"]
        )
        self.price_errors = r.counter(
            "monitor_price_errors_total", "Price source errors.", ["provider"]
        )
        self.rule_reloads = r.counter(
            "monitor_rule_reloads_total", "Rule reloads by outcome.", ["outcome"]
        )
        self.destination_broken = r.gauge(
            "monitor_destination_broken", "1 when a destination is gone.", ["destination"]
        )

    def render(self) -> str:
        return self.registry.render()
