"""The always-on daemon: wires the adapters to the core and owns their lifecycle.

One `Daemon.run(stop)` call opens the store, the HTTP sessions, the notifiers,
the price source and the health server inside one `AsyncExitStack`, schedules
the jobs with APScheduler (feed polls, price polls, due follow-ups, pruning),
runs the outbox dispatcher and the rule watcher as tasks, and on `stop` stops
intake, drains the outbox for at most the grace period, cancels and awaits every
task, and closes everything in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.app.alerts import AlertBuilder, destinations_from_config
from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.app.health import Check, HealthServer, build_app
from monitor.app.metrics import Metrics
from monitor.app.poll import FeedOutcome, Poller
from monitor.app.pricing import PriceTracker
from monitor.app.rulewatch import RuleWatcher
from monitor.config import Config, FeedConfig
from monitor.core.clock import Clock
from monitor.core.engine import RuleSet, analyze
from monitor.core.errors import ConfigError, RuleError
from monitor.core.models import Alert, Article
from monitor.feeds.http import make_session
from monitor.logs import get_logger
from monitor.notifiers.registry import make_notifier
from monitor.ports import NewOutboxEntry, Notifier, OutboxEntry, Store, StoryRecord
from monitor.rulefiles import load_ruleset
from monitor.store import open_store

log = get_logger(__name__)

# How often due feeds are looked for. A feed is polled at the first tick after it is due,
# so a story can wait up to its interval plus one tick: a quarter of a second keeps that
# close to the interval for about a millisecond of store work per tick.
POLL_TICK_S = 0.25
PRUNE_EVERY_S = 6 * 3600.0
FOLLOWUP_TICK_S = 1.0
CHART_TICK_S = 1.0  # the chart's picture is redrawn at most this late after a minute turns
FOLLOWUP_GRACE_S = 300.0  # a follow-up this late (the loop was stalled) is not sent
FOLLOWUPS_KEPT = 5000  # news alerts awaiting follow-ups; beyond it the oldest lose theirs


@dataclass(slots=True, eq=False)
class _Followed:
    """A delivered news alert waiting for its follow-ups. The alert itself stays in the
    store (its sent outbox rows) and is read back when a follow-up comes due."""

    key: str
    destinations: tuple[str, ...]
    sent_at: float  # monotonic
    left: int  # follow-ups not yet due


# The modules setup.py compiles where a C compiler is at hand, with their sources.
COMPILED_MODULES = (
    ("monitor.core.matcher", "matcher.py"),
    ("monitor.core.engine", "engine.py"),
    ("monitor.core.firing", "firing.py"),
    ("monitor.core.stance", "stance.py"),
    ("monitor.core._stance_native", "_stance_native.pyx"),
    ("monitor.core._sentences_native", "_sentences_native.pyx"),
    ("monitor.core._slots_native", "_slots_native.pyx"),
    ("monitor.core._matcher_native", "_matcher_native.pyx"),
)


def compiled_modules() -> dict[str, bool]:
    """Module name -> whether it runs as the extension setup.py builds (see setup.py).
    An extension older than its source (an editable install not rebuilt after an
    edit) is reported: it is the old code that runs."""
    out: dict[str, bool] = {}
    for name, source in COMPILED_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a native kernel that was not built
            out[name] = False
            continue
        built = Path(module.__file__ or "")
        out[name] = built.suffix != ".py"
        src = built.with_name(source)
        if out[name] and src.exists() and src.stat().st_mtime > built.stat().st_mtime:
            log.warning("extension_stale", extension=str(built), source=str(src))
    return out


def matcher_build() -> str:
    """How the engine runs: "compiled" when every module setup.py compiles is built,
    "python" when none is, else "partial" with the modules that run as Python."""
    found = compiled_modules()
    python = [name.rsplit(".", 1)[-1] for name, built in found.items() if not built]
    if not python:
        return "compiled"
    if len(python) == len(found):
        return "python"
    return "partial (python: " + ", ".join(python) + ")"


def default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DaemonHooks:
    """Optional observers, used by `monitor demo` to show progress."""

    on_poll: Callable[[list[FeedOutcome]], None] | None = None
    on_delivered: Callable[[str, str], None] | None = None  # destination, alert title


class Daemon:
    """Runs until `stop` is set. Construct, then `await run(stop)`."""

    def __init__(
        self,
        config: Config,
        *,
        rules_dir: Path,
        clock: Clock,
        environ: Mapping[str, str] | None = None,
        instance_id: str | None = None,
        hooks: DaemonHooks | None = None,
        fallback_rules: RuleSet | None = None,
    ) -> None:
        # On a reload (SIGHUP) the rules in force before it; used if the files are broken.
        self._fallback_rules = fallback_rules
        self.config = config
        self.rules_dir = rules_dir
        self.clock = clock
        self.environ = dict(os.environ if environ is None else environ)
        self.instance_id = instance_id or config.store.instance_id or default_instance_id()
        self.hooks = hooks or DaemonHooks()
        self.metrics = Metrics()
        self._jobs: set[asyncio.Task[Any]] = set()
        self._intake_open = True
        self.health_port: int | None = None
        self.started = asyncio.Event()
        self._rules: RuleWatcher | None = None
        self._prices: PriceTracker | None = None
        self._builder: AlertBuilder | None = None
        self._poller: Poller | None = None
        self._dispatcher: Dispatcher | None = None
        self._store: Store | None = None
        self._scheduler: AsyncIOScheduler | None = None
        # News alerts awaiting follow-ups by key, oldest first, and per delay in
        # `prices.followups` the same alerts in the order they went out, which is
        # the order they come due because every alert gets the same delays.
        self._followed: dict[str, _Followed] = {}
        self._followups_due: list[deque[_Followed]] = [deque() for _ in config.prices.followups]

    def rule_ids(self) -> list[str]:
        """Ids of the rules in force now."""
        return [r.id for r in self._rules.current.rules] if self._rules else []

    def current_rules(self) -> RuleSet | None:
        """The rule set in force (None before `run` loaded one)."""
        return self._rules.current if self._rules else None

    def rule_error(self) -> str | None:
        """Why the last rule edit was refused (file:line ...), while it stays broken."""
        err = self._rules.last_error if self._rules else None
        return str(err) if err is not None else None

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        # Fails loudly before anything starts; destinations must name configured notifiers.
        # On a reload, broken rule files keep the rules that were in force.
        rules_error: RuleError | None = None
        try:
            ruleset = load_ruleset(self.rules_dir, cfg.rules, [n.name for n in cfg.notifiers])
        except RuleError as e:
            if self._fallback_rules is None:
                raise
            log.error("rules_invalid_on_reload", error=str(e), kept="previous rules")
            ruleset, rules_error = self._fallback_rules, e
        async with AsyncExitStack() as stack:
            store = open_store(cfg.store.url, instance_id=self.instance_id, clock=self.clock)
            await store.open()
            self._store = store
            stack.push_async_callback(store.close)

            feed_session = make_session(cfg.fetch)
            stack.push_async_callback(feed_session.close)
            # The operator's own endpoints (notifiers, prices) are not behind the feed guard.
            http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30, sock_connect=10, sock_read=20)
            )
            stack.push_async_callback(http.close)

            notifiers = self._make_notifiers(http)
            for n in notifiers.values():
                stack.push_async_callback(n.aclose)

            self._rules = RuleWatcher(
                self.rules_dir,
                cfg.rules,
                initial=ruleset,
                notifiers=list(notifiers),
                on_reload=self._on_reload,
            )
            self._rules.last_error = rules_error
            self._prices = PriceTracker(cfg.prices, http, self.clock, self.environ, self.metrics)
            await self._prices.start()
            stack.push_async_callback(self._prices.aclose)

            self._builder = AlertBuilder(
                config=cfg,
                store=store,
                clock=self.clock,
                destinations=list(notifiers),
                price_context=self._prices.context_for,
                chart=self._prices.chart_for if self._wants_charts() else None,
            )
            # One price fetch before the first poll, so the first alerts carry a price.
            try:
                await asyncio.wait_for(self._price_tick(), timeout=5.0)
            except TimeoutError:
                log.warning("price_first_fetch_slow", waited_s=5.0)
            self._poller = Poller(
                cfg,
                store,
                feed_session,
                self.clock,
                on_new=self._on_new,
                owner=self.instance_id,
                on_committed=self._hand_to_dispatcher,
            )
            self._dispatcher = Dispatcher(
                store,
                notifiers,
                self.clock,
                owner=self.instance_id,
                # Outbox claims expire after `[store] lease` like feed leases, so a crashed
                # instance's rows are taken over that soon; digests follow each notifier's config.
                destinations=destinations_from_config(cfg),
                settings=DispatchSettings.from_config(cfg.dispatch, cfg.store.lease),
                on_result=self._on_delivery,
            )

            if cfg.health.enabled:
                server = HealthServer(
                    build_app(self.metrics, lambda: self._readiness(store)),
                    cfg.health.host,
                    cfg.health.port,
                )
                await server.start()
                stack.push_async_callback(server.stop)
                self.health_port = server.port
                log.info("health_listening", host=cfg.health.host, port=server.port)

            scheduler = AsyncIOScheduler(timezone="UTC")
            # APScheduler runs on wall time whatever the injected clock says.
            now = datetime.now(UTC)
            scheduler.add_job(
                self._job,
                "interval",
                args=[self._poll_tick],
                seconds=POLL_TICK_S,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                id="poll",
            )
            if cfg.prices.enabled and cfg.prices.symbols:
                scheduler.add_job(
                    self._job,
                    "interval",
                    args=[self._price_tick],
                    seconds=cfg.prices.interval,
                    next_run_time=now,
                    max_instances=1,
                    coalesce=True,
                    id="prices",
                )
            if self._wants_charts():
                scheduler.add_job(
                    self._job,
                    "interval",
                    args=[self._chart_tick],
                    seconds=CHART_TICK_S,
                    max_instances=1,
                    coalesce=True,
                    id="charts",
                )
            if cfg.prices.enabled and cfg.prices.followups:
                scheduler.add_job(
                    self._job,
                    "interval",
                    args=[self._followup_tick],
                    seconds=FOLLOWUP_TICK_S,
                    max_instances=1,
                    coalesce=True,
                    id="followups",
                )
            scheduler.add_job(
                self._job,
                "interval",
                args=[lambda: self._prune(store)],
                seconds=PRUNE_EVERY_S,
                max_instances=1,
                coalesce=True,
                id="prune",
            )
            scheduler.start()
            self._scheduler = scheduler
            stack.callback(lambda: scheduler.shutdown(wait=False))

            dispatch_stop = asyncio.Event()
            tasks = [asyncio.create_task(self._dispatcher.run(dispatch_stop), name="dispatch")]
            if cfg.rules.watch:
                tasks.append(asyncio.create_task(self._rules.watch(stop), name="rulewatch"))
            # What start-up built (modules, config, the compiled rules) lives as long as
            # the process: out of the collector's sight, a full collection no longer walks
            # it, which took pauses of tens of milliseconds out of the alert path.
            gc.collect()
            gc.freeze()
            log.info(
                "daemon_started",
                instance=self.instance_id,
                feeds=len(cfg.feeds),
                notifiers=",".join(notifiers) or "-",
                rules=len(ruleset.rules),
                matcher=matcher_build(),
            )
            self.started.set()
            try:
                await stop.wait()
            finally:
                await self._shutdown(scheduler, dispatch_stop, tasks)

    async def _shutdown(
        self,
        scheduler: AsyncIOScheduler,
        dispatch_stop: asyncio.Event,
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        """Stop intake, let in-flight polls commit, drain the outbox, all within the grace
        period; then cancel what is left and hand unconfirmed outbox claims back."""
        grace = self.config.dispatch.grace
        deadline = self.clock.monotonic() + grace

        def left() -> float:
            return max(0.0, deadline - self.clock.monotonic())

        log.info("daemon_stopping", grace_s=grace)
        self._intake_open = False
        scheduler.pause()
        if self._jobs:
            _, pending = await asyncio.wait(set(self._jobs), timeout=grace / 2)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        dispatch_stop.set()
        dispatching = [t for t in tasks if t.get_name() == "dispatch"]
        if dispatching:
            # The dispatcher finishes the pass it is in (a send in flight completes).
            await asyncio.wait(dispatching, timeout=left())
        remaining = None
        if self._dispatcher is not None and left() > 0:
            with contextlib.suppress(TimeoutError):
                remaining = await asyncio.wait_for(self._dispatcher.drain(left()), left() + 0.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._store is not None:
            # Rows claimed but not confirmed go back to pending for the next start.
            released = await self._store.release_outbox(self.instance_id, self.clock.now())
            if released:
                log.info("outbox_released", rows=released)
        log.info("daemon_stopped", outbox_pending=remaining)

    async def _job(self, body: Callable[[], Awaitable[None]]) -> None:
        """Runs one scheduled job as a tracked task, so shutdown can await it."""
        if not self._intake_open:
            return
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a job failure is logged and the schedule goes on
            log.error("job_failed", error=f"{type(e).__name__}: {e}", exc_info=True)
        finally:
            if task is not None:
                self._jobs.discard(task)

    # ------------------------------------------------------------------ jobs

    async def _poll_tick(self) -> None:
        # Each tick polls the feeds due now in a task of its own, so one slow feed
        # holds back only its own round, never the next tick (a feed in flight stays
        # leased and is not claimed twice).
        task = asyncio.create_task(self._job(self._poll_round), name="poll-round")
        self._jobs.add(task)

    def _hand_to_dispatcher(self, handed: list[OutboxEntry]) -> None:
        """A feed's poll committed alerts, as this instance's claim: send them now, not
        after the whole round."""
        if self._dispatcher is not None:
            self._dispatcher.take(handed)

    async def _poll_round(self) -> None:
        assert self._poller is not None
        outcomes = await self._poller.poll_due()
        for o in outcomes:
            self.metrics.feed_fetches.inc(feed=o.feed, outcome=o.status)
            self.metrics.feed_fetch_seconds.observe(o.duration, feed=o.feed)
            if o.new:
                self.metrics.items_seen.inc(len(o.new), feed=o.feed)
        if outcomes and self.hooks.on_poll:
            self.hooks.on_poll(outcomes)

    async def _price_tick(self) -> None:
        assert self._prices is not None and self._builder is not None
        alerts = await self._prices.tick()
        if alerts:
            await self._builder.enqueue_alerts(alerts)
        if self._wants_charts():
            # Let what is waiting on the loop (a story on its way to Discord) go first:
            # reading the prices and redrawing the chart are then two short turns of the
            # loop instead of one of several milliseconds.
            await asyncio.sleep(0)
            self._prices.prepare_chart()

    async def _chart_tick(self) -> None:
        """Keep the chart's picture drawn ahead of alerts: a new minute redraws it."""
        assert self._prices is not None
        self._prices.prepare_chart()

    async def _prune(self, store: Any) -> None:
        before = self.clock.now() - timedelta(seconds=self.config.store.retention)
        n = await store.prune(before)
        log.info("store_pruned", rows=n)

    async def _on_new(
        self, feed: FeedConfig, articles: list[Article]
    ) -> tuple[list[StoryRecord], list[NewOutboxEntry]]:
        assert self._rules is not None and self._builder is not None
        ruleset: RuleSet = self._rules.current
        analyses = [analyze(ruleset, a) for a in articles]
        for an in analyses:
            for m in an.rules:
                self.metrics.matches.inc(rule=m.rule_id)
        stories, entries = await self._builder.build([an for an in analyses if an.rules])
        if self._prices is not None:
            for key, alert in {e.alert.key: e.alert for e in entries}.items():
                if alert.kind == "news" and not alert.edit_of:
                    self._prices.note_news(alert)
                    log.debug("news_noted_for_moves", key=key)
        return stories, entries

    def _on_reload(self, ok: bool, detail: str) -> None:
        self.metrics.rule_reloads.inc(outcome="ok" if ok else "error")

    def _on_delivery(
        self, destination: str, outcome: str, alert: Alert, latency_s: float | None
    ) -> None:
        self.metrics.alerts.inc(destination=destination, outcome=outcome)
        if outcome != "sent":
            return
        # Publish (or, for alerts with no story, enqueue) to delivery, as the metric says.
        if alert.published is not None:
            latency_s = (self.clock.now() - alert.published).total_seconds()
        if latency_s is not None and latency_s >= 0:
            self.metrics.delivery_latency.observe(latency_s, destination=destination)
        if self.hooks.on_delivered:
            self.hooks.on_delivered(destination, alert.title)
        if alert.kind == "news" and alert.prices and not alert.edit_of:
            self._schedule_followups(alert, destination)

    def _schedule_followups(self, alert: Alert, destination: str) -> None:
        """+15 and +60 minutes (`prices.followups`) after a news alert with a price: the
        move since, to each destination that got it. The schedule is kept in memory (a
        restart forgets pending follow-ups); the alert is not, it is in the store."""
        delays = self.config.prices.followups
        if not delays or not self._intake_open:
            return
        waiting = self._followed.get(alert.key)
        if waiting is not None:
            if destination not in waiting.destinations:
                waiting.destinations += (destination,)
            return
        waiting = _Followed(alert.key, (destination,), self.clock.monotonic(), len(delays))
        self._followed[alert.key] = waiting
        for due in self._followups_due:
            due.append(waiting)
        while len(self._followed) > FOLLOWUPS_KEPT:
            # A burst beyond the bound: the oldest alert loses its remaining follow-ups.
            dropped = self._followed.pop(next(iter(self._followed)))
            dropped.left = 0
            log.warning("followups_dropped", key=dropped.key, waiting=FOLLOWUPS_KEPT)

    async def _followup_tick(self) -> None:
        """Sends every follow-up that has come due, in the order they came due."""
        now = self.clock.monotonic()
        delays = self.config.prices.followups
        for after, due in zip(delays, self._followups_due, strict=True):
            while due and due[0].sent_at + after <= now:
                waiting = due.popleft()
                if waiting.left <= 0:
                    continue  # dropped by the bound
                waiting.left -= 1
                if waiting.left == 0:
                    del self._followed[waiting.key]
                late = now - waiting.sent_at - after
                if late > FOLLOWUP_GRACE_S:
                    log.warning("followup_skipped", key=waiting.key, late_s=round(late))
                    continue
                original = await self._delivered_alert(waiting)
                if original is None:
                    log.warning("followup_skipped", key=waiting.key, reason="alert not in store")
                    continue
                await self._followup(original, after, sorted(waiting.destinations))

    async def _delivered_alert(self, waiting: _Followed) -> Alert | None:
        """The news alert as one of its destinations got it, read back from the store."""
        assert self._store is not None
        for destination in waiting.destinations:
            alert = await self._store.sent_alert(destination, waiting.key)
            if alert is not None:
                return alert
        return None

    async def _followup(self, original: Alert, after_s: float, destinations: list[str]) -> None:
        assert self._prices is not None and self._store is not None
        followup = self._prices.followup(original, after_s, reply_to=original.key)
        if followup is None or not destinations:
            return
        await self._store.enqueue([NewOutboxEntry(d, followup, followup.key) for d in destinations])
        if self._dispatcher is not None:
            self._dispatcher.wake()

    @property
    def followups_pending(self) -> int:
        """News alerts still waiting for a follow-up."""
        return len(self._followed)

    # ------------------------------------------------------------------ wiring helpers

    def _wants_charts(self) -> bool:
        """Only Discord takes files from a webhook; render charts only if one wants them."""
        return self.config.prices.enabled and any(
            n.kind == "discord" and n.chart for n in self.config.notifiers
        )

    def _make_notifiers(self, http: aiohttp.ClientSession) -> dict[str, Notifier]:
        out: dict[str, Notifier] = {}
        for n in self.config.notifiers:
            url = n.resolve_url(self.environ)
            out[n.name] = make_notifier(n, http, url, environ=self.environ)
        if not out:
            raise ConfigError("no notifiers configured: add at least one [[notifiers]] table")
        return out

    async def _readiness(self, store: Any) -> dict[str, Check]:
        checks: dict[str, Check] = {}
        try:
            ok = await asyncio.wait_for(store.ping(), timeout=2.0)
            checks["store"] = Check(bool(ok), "reachable" if ok else "no answer")
        except Exception as e:
            checks["store"] = Check(False, f"{type(e).__name__}: {e}")
        rules = self._rules.current if self._rules else None
        checks["rules"] = Check(rules is not None, f"{len(rules.rules)} rules" if rules else "")
        if (error := self.rule_error()) is not None:
            checks["rules"] = Check(False, f"last edit refused, previous rules kept: {error}")
        depth = await store.outbox_depth()
        self.metrics.outbox_depth.set(depth)
        checks["outbox"] = Check(True, f"{depth} pending")
        if self._prices is not None and self.config.prices.enabled:
            fresh, detail = self._prices.freshness()
            checks["prices"] = Check(fresh, detail)
        broken = [d.name for d in await store.load_destinations() if d.broken]
        for d in self.config.notifiers:
            self.metrics.destination_broken.set(1 if d.name in broken else 0, destination=d.name)
        checks["destinations"] = Check(
            not broken, "broken: " + ", ".join(broken) if broken else "ok"
        )
        return checks
