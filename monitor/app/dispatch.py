"""The outbox dispatcher: claims due alerts from the store and delivers them.

At-least-once: a row is claimed (leased), sent, then marked sent; a crash
between send and mark leaves a lease that expires and the row is sent again,
so duplicates are limited to sends in flight at the crash. Per destination it
keeps the notifier's declared rate (`max_per_window` per `window_s`), honours
429 retry_after exactly (nothing goes to that destination before it has
passed), retries 5xx and timeouts with exponential backoff and jitter, marks
other 4xx rejected, and records a destination that is gone as broken: its rows
fail (listed by `monitor outbox`, brought back by `--retry`) while every other
destination carries on. A burst beyond a destination's digest threshold is
held briefly and folded into one digest message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from monitor.config import DispatchConfig
from monitor.core.clock import Clock
from monitor.core.errors import (
    DeliveryError,
    DestinationGoneError,
    RejectedDeliveryError,
    RetryableDeliveryError,
    StoreError,
)
from monitor.core.models import Alert, PriceContext, SourceRef
from monitor.core.redact import redact
from monitor.core.routing import Destination, make_digest, plan_digest
from monitor.logs import get_logger
from monitor.ports import Delivery, DestinationState, Notifier, OutboxEntry, Store

log = get_logger(__name__)

# (destination, outcome, alert, seconds from enqueue to delivery when sent); outcome is
# one of sent, retry, rejected, gone, failed.
MESSAGES_KEPT = 5000
STATES_REFRESH_S = 30.0  # destination states are read again at least this often
ResultHook = Callable[[str, str, Alert, float | None], None]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    lease_s: float = 120.0  # a claimed row is ours this long; a crash frees it after
    batch: int = 200  # rows claimed per pass
    idle_s: float = 0.5  # pause between passes when nothing was due
    base_backoff_s: float = 2.0
    max_backoff_s: float = 900.0
    max_attempts: int = 0  # 0: retry for ever
    digest_hold_s: float = 10.0  # a folded burst waits this long for the rest of itself
    margin: float = 1.05  # keep a little under a destination's declared rate

    @classmethod
    def from_config(cls, dispatch: DispatchConfig, lease_s: float = 120.0) -> DispatchSettings:
        """Settings from `[dispatch]` (max_attempts, max_backoff) and `[store] lease`."""
        return cls(
            lease_s=lease_s, max_attempts=dispatch.max_attempts, max_backoff_s=dispatch.max_backoff
        )


class _Pace:
    """One destination's send times and any wait a 429 imposed (monotonic seconds)."""

    def __init__(self, max_per_window: int, window_s: float, margin: float) -> None:
        self.max = max(1, max_per_window)
        self.window = window_s * margin
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0

    def next_slot(self, now: float) -> float:
        while self.sent and now - self.sent[0] >= self.window:
            self.sent.popleft()
        slot = self.blocked_until
        if len(self.sent) >= self.max:
            slot = max(slot, self.sent[-self.max] + self.window)
        return max(slot, now)

    def record(self, at: float) -> None:
        self.sent.append(at)


class _Posted(NamedTuple):
    """A message this process posted: its ref, and what edits have put on it since."""

    ref: str
    sources: tuple[SourceRef, ...] | None = None
    prices: tuple[PriceContext, ...] | None = None

    def shown(self, original: Alert) -> Alert:
        """What the message shows now, from the alert its first post showed. Without
        the chart: an edit keeps the attachment the message already has."""
        return dataclasses.replace(
            original,
            chart_png="",
            sources=original.sources if self.sources is None else self.sources,
            prices=original.prices if self.prices is None else self.prices,
        )


class Dispatcher:
    """Delivers outbox rows to notifiers. One per process; several processes may
    share a PostgreSQL store (claims are leased to `owner`)."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        clock: Clock,
        owner: str,
        rng: random.Random | None = None,
        *,
        destinations: Mapping[str, Destination] | None = None,
        settings: DispatchSettings | None = None,
        on_result: ResultHook | None = None,
    ) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._owner = owner
        self._rng = rng or random.Random()
        self._dest = dict(destinations or {})
        self._cfg = settings or DispatchSettings()
        self._pace = {
            name: _Pace(n.max_per_window, n.window_s, self._cfg.margin)
            for name, n in self._notifiers.items()
        }
        self._recent: dict[str, list[float]] = {}  # wall-clock sends, for digests
        self._holds: dict[str, datetime] = {}  # when each destination's held burst goes out
        self._states: dict[str, DestinationState] = {}
        self._states_loaded_at = -math.inf
        self._flush = False  # when draining, held digests go out at once
        self._claim_deadline = math.inf  # monotonic time by which a send must start
        self._wake = asyncio.Event()
        # The future `_idle` awaits, resolved by `wake` itself: rows a poll just
        # committed are claimed on the event loop's next turn.
        self._waiter: asyncio.Future[None] | None = None
        self._on_result = on_result
        # (destination, dedupe key) -> the message posted for it: what updates can edit.
        # Only its ref and what edits changed are kept; the alert it showed is read back
        # from its outbox row when an edit comes (thousands are kept, for hours).
        self._messages: OrderedDict[tuple[str, str], _Posted] = OrderedDict()
        self._handed: list[OutboxEntry] = []  # rows handed over by `take`, not yet sent

    # ------------------------------------------------------------------ public

    def wake(self) -> None:
        """Cut the idle pause short: new rows were just enqueued."""
        self._wake.set()
        _resolve(self._waiter)

    def take(self, entries: Sequence[OutboxEntry]) -> None:
        """Deliver rows this owner already holds (committed as its claim) on the next
        pass, before claiming anything, and start that pass now."""
        self._handed.extend(entries)
        self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set. Store errors are logged and retried; rows
        this process still holds when it stops (or is cancelled) are handed back."""
        stopping = asyncio.create_task(self._wake_on(stop), name="dispatch-stop")
        try:
            while not stop.is_set():
                # Cleared before the claim, not after it: a row committed while the claim
                # runs sets it again, and the idle wait below returns at once.
                self._wake.clear()
                try:
                    handled = await self.dispatch_once()
                except StoreError as e:
                    log.error("dispatch_store_error", error=redact(str(e)))
                    handled = 0
                except Exception as e:  # keep delivering: claimed rows return when leases expire
                    log.error("dispatch_failed", error=redact(repr(e)), exc_info=True)
                    handled = 0
                if handled == 0:
                    await self._idle(stop)
        finally:
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
            await self.release()

    async def release(self) -> int:
        """Hand back every row this owner still holds, due at once. Never raises."""
        try:
            return await self._store.release_outbox(self._owner, self._clock.now())
        except Exception as e:  # shutting down: leases expire on their own anyway
            log.warning("dispatch_release_failed", error=redact(repr(e)))
            return 0

    async def drain(self, deadline_s: float) -> int:
        """Send what is due until nothing is or `deadline_s` seconds have passed;
        held digests go out at once. Returns how many rows remain pending."""
        end = self._clock.monotonic() + deadline_s
        self._flush = True
        try:
            await self._load_states()
            while self._clock.monotonic() < end:
                if await self.dispatch_once() == 0:
                    if await self._store.outbox_depth() == 0 or not await self._due_soon(end):
                        break
                    await asyncio.sleep(min(0.1, max(0.0, end - self._clock.monotonic())))
        finally:
            self._flush = False
        return await self._store.outbox_depth()

    async def dispatch_once(self) -> int:
        """One pass: claim due rows, deliver them per destination. Returns rows handled."""
        if self._handed:  # already ours: no claim, no store round trip before the send
            return await self._deliver_handed()
        claim = asyncio.ensure_future(
            self._store.claim_outbox(
                self._owner, self._clock.now(), self._cfg.batch, self._cfg.lease_s
            )
        )
        handled = 0
        try:
            # Rows a poll hands over while the claim is on its way (the store may be busy
            # with that poll's own writes) go out at once, not after the claim: they are
            # ours already, and this pass is still the only one sending.
            loop = asyncio.get_running_loop()
            while not claim.done() and not self._handed:
                waiter = self._waiter = loop.create_future()
                try:
                    await asyncio.wait((claim, waiter), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._waiter = None
            if not claim.done():
                handled = await self._deliver_handed()
            return handled + await self._deliver(await claim)
        finally:
            if not claim.done():
                # Cancelled, or the handed rows failed: rows the claim still leases come
                # back when the dispatcher stops (release) or their lease runs out.
                claim.cancel()

    async def _deliver_handed(self) -> int:
        entries, self._handed = self._handed, []
        # Their lease began when they were committed, and they were created then.
        held = (self._clock.now() - min(e.created_at for e in entries)).total_seconds()
        return await self._deliver(entries, max(0.0, held))

    async def _deliver(self, entries: Sequence[OutboxEntry], held: float = 0.0) -> int:
        """Deliver rows leased to us `held` seconds ago, per destination. Returns how many."""
        if not entries:
            return 0
        # Past half the lease, another instance may soon claim these rows again: a send
        # not under way by then is handed back rather than risk a second copy.
        self._claim_deadline = self._clock.monotonic() + self._cfg.lease_s / 2 - held
        # A broken mark may have been cleared by `monitor outbox --retry` since: read the
        # states again while one is cached, else only now and then (a store round trip
        # on every pass would sit between each new alert and its send).
        if self._states_stale():
            await self._load_states()
        groups: dict[str, list[OutboxEntry]] = {}
        for e in entries:
            groups.setdefault(e.destination, []).append(e)
        results = await asyncio.gather(
            *(self._deliver_group(d, g) for d, g in groups.items()), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # every group has finished; surface the first failure to the caller
            raise errors[0]
        return len(entries)

    # ------------------------------------------------------------------ per destination

    async def _deliver_group(self, name: str, entries: list[OutboxEntry]) -> None:
        notifier = self._notifiers.get(name)
        state = self._states.get(name)
        if notifier is None:
            for e in entries:
                await self._store.mark_failed(e.id, self._clock.now(), f"no notifier named {name}")
            log.warning("dispatch_unknown_destination", destination=name, rows=len(entries))
            return
        if state is not None and state.broken:
            await self._fail_all(entries, f"destination broken: {state.reason or 'gone'}")
            return
        entries.sort(key=lambda e: e.id)
        edits = [e for e in entries if self._edits_in_place(name, notifier, e.alert)]
        rest = [e for e in entries if e not in edits]
        singles, folded = self._split(name, rest)
        pending = list(singles)
        while pending:
            entry = pending.pop(0)
            outcome = await self._send(name, notifier, entry.alert, [entry])
            if outcome == "gone":
                await self._fail_all(pending + folded + edits, "destination gone")
                return
            if outcome == "deferred":
                await self._defer(pending + folded + edits, name)
                return
        if folded:
            await self._send_digest(name, notifier, folded)
        for entry in edits:
            if await self._edit(name, notifier, entry) in ("gone", "deferred"):
                await self._defer(edits[edits.index(entry) + 1 :], name)
                return

    async def _edit(self, name: str, notifier: Notifier, entry: OutboxEntry) -> str:
        """Replace an earlier message with the alert it showed plus the update's sources.

        Skipped (marked sent, nothing posted) when the destination cannot edit or
        this process did not post the original: an update is never worth a second ping.
        """
        update = entry.alert
        key = update.edit_of or update.reply_to or ""
        found = self._messages.get((name, key))
        if not notifier.can_edit or found is None:
            await self._store.mark_sent(entry.id, self._clock.now(), None)
            log.debug(
                "edit_skipped",
                destination=name,
                key=key,
                reason="cannot edit" if not notifier.can_edit else "original unknown",
            )
            return "skipped"
        original = await self._store.sent_alert(name, key)
        if original is None:  # pruned, or deleted by hand: nothing to show again
            self._messages.pop((name, key), None)  # nor will there be for later edits
            await self._store.mark_sent(entry.id, self._clock.now(), None)
            log.warning("edit_skipped", destination=name, key=key, reason="original row gone")
            return "skipped"
        original = found.shown(original)
        ref = found.ref
        if update.kind == "followup":
            # The original message now shows the latest price and the move since it went out.
            edited = dataclasses.replace(original, prices=update.prices)
        else:
            edited = dataclasses.replace(original, sources=update.sources)
        outcome = await self._send(
            name, notifier, edited, [entry], action=lambda: notifier.edit(ref, edited)
        )
        if outcome == "sent":
            self._remember(name, key, ref, edited, edited=True)
        return outcome

    def _split(
        self, name: str, entries: list[OutboxEntry]
    ) -> tuple[list[OutboxEntry], list[OutboxEntry]]:
        """Which rows go out one by one and which fold into a digest."""
        dest = self._dest.get(name, Destination(name))
        news = [e for e in entries if e.alert.kind == "news"]
        others = [e for e in entries if e.alert.kind != "news"]
        now = self._clock.now().timestamp()
        plan = plan_digest(
            self._recent.get(name, []),
            len(news),
            now,
            dest.digest_threshold,
            dest.digest_window_s,
            self._cfg.digest_hold_s,
            oldest_waiting_since=min((e.created_at.timestamp() for e in news), default=now),
        )
        singles = others + news[: plan.single]
        return sorted(singles, key=lambda e: e.id), news[plan.single :]

    async def _send_digest(self, name: str, notifier: Notifier, folded: list[OutboxEntry]) -> None:
        dest = self._dest.get(name, Destination(name))
        now = self._clock.now()
        hold_until = self._holds.get(name)
        hold = timedelta(seconds=self._cfg.digest_hold_s)
        if hold_until is None or hold_until < now - hold:  # none, or left by rows sent elsewhere
            # One hold per burst: rows folded later wait for the same moment, so the
            # whole burst lands in one digest instead of one digest per pass.
            oldest = min(e.created_at for e in folded)
            hold_until = self._holds[name] = oldest + hold
        if not self._flush and now < hold_until:
            for e in folded:  # released, not failed: they come back due at hold_until
                await self._store.mark_retry(e.id, hold_until, "held for digest")
            log.info(
                "digest_held", destination=name, rows=len(folded), until=hold_until.isoformat()
            )
            return
        self._holds.pop(name, None)
        if len(folded) == 1:
            await self._send(name, notifier, folded[0].alert, folded)
            return
        digest = make_digest([e.alert for e in folded], name, now)
        log.info(
            "digest_built", destination=name, children=len(folded), threshold=dest.digest_threshold
        )
        await self._send(name, notifier, digest, folded)

    async def _send(
        self,
        name: str,
        notifier: Notifier,
        alert: Alert,
        rows: Sequence[OutboxEntry],
        action: Callable[[], Awaitable[Delivery]] | None = None,
    ) -> str:
        """Send one message covering `rows`; record the outcome. Returns
        'sent', 'retry', 'rejected', 'gone' or 'deferred'."""
        pace = self._pace[name]
        wait = pace.next_slot(self._clock.monotonic()) - self._clock.monotonic()
        too_late = self._clock.monotonic() + max(wait, 0.0) > self._claim_deadline
        if wait > self._cfg.lease_s / 4 or too_late:  # the lease would not cover the send
            await self._defer(rows, name)
            return "deferred"
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            delivery = await (action() if action is not None else notifier.send(alert))
        except RetryableDeliveryError as e:
            pace.record(self._clock.monotonic())
            await self._retry(name, rows, e)
            return "retry"
        except DestinationGoneError as e:
            await self._gone(name, rows, e)
            return "gone"
        except RejectedDeliveryError as e:
            pace.record(self._clock.monotonic())
            now = self._clock.now()
            for r in rows:
                await self._store.mark_rejected(r.id, now, redact(str(e)))
                self._report(name, "rejected", r.alert, None)
            log.error("delivery_rejected", destination=name, rows=len(rows), error=redact(str(e)))
            await self._note(name, error=redact(str(e)))
            return "rejected"
        except Exception as e:  # a bug or an unforeseen library error: back off, surface it
            pace.record(self._clock.monotonic())
            log.error("delivery_error", destination=name, error=redact(repr(e)), exc_info=True)
            await self._retry(name, rows, RetryableDeliveryError(f"{name}: {e!r}"))
            return "retry"
        pace.record(self._clock.monotonic())
        if delivery.wait_s:  # the destination says its bucket is empty: wait it out
            pace.blocked_until = max(pace.blocked_until, self._clock.monotonic() + delivery.wait_s)
        now = self._clock.now()
        if action is None:  # an edit pings nobody: it does not count towards a digest
            self._recent.setdefault(name, []).append(now.timestamp())
            self._trim_recent(name, now.timestamp())
        for r in rows:
            await self._store.mark_sent(r.id, now, delivery.message_ref)
        if action is None and delivery.message_ref and len(rows) == 1 and alert.kind != "digest":
            self._remember(name, rows[0].dedupe_key, delivery.message_ref, alert)
        for r in rows:
            self._report(name, "sent", r.alert, (now - r.created_at).total_seconds())
        log.info(
            "alert_delivered",
            destination=name,
            kind=alert.kind,
            key=alert.key,
            rows=len(rows),
            attempts=max(r.attempts for r in rows),
        )
        await self._note(name, success=now)
        return "sent"

    # ------------------------------------------------------------------ outcomes

    async def _retry(
        self, name: str, rows: Sequence[OutboxEntry], e: RetryableDeliveryError
    ) -> None:
        attempts = max(r.attempts for r in rows)
        error = redact(str(e))
        now = self._clock.now()
        if self._cfg.max_attempts and attempts >= self._cfg.max_attempts:
            for r in rows:
                await self._store.mark_failed(r.id, now, f"gave up after {attempts}: {error}")
                self._report(name, "failed", r.alert, None)
            log.error("delivery_failed", destination=name, rows=len(rows), error=error)
            return
        if e.retry_after is not None:
            delay = e.retry_after
            self._pace[name].blocked_until = self._clock.monotonic() + delay
        else:
            cap = min(self._cfg.max_backoff_s, self._cfg.base_backoff_s * 2 ** (attempts - 1))
            delay = cap / 2 + self._rng.uniform(0, cap / 2)
        when = now + timedelta(seconds=delay)
        for r in rows:
            await self._store.mark_retry(r.id, when, error)
            self._report(name, "retry", r.alert, None)
        log.warning(
            "delivery_retry",
            destination=name,
            rows=len(rows),
            attempts=attempts,
            retry_in_s=round(delay, 3),
            error=error,
        )
        await self._note(name, error=error)

    async def _gone(self, name: str, rows: Sequence[OutboxEntry], e: DeliveryError) -> None:
        error = redact(str(e))
        await self._fail_all(rows, error)
        for r in rows:
            self._report(name, "gone", r.alert, None)
        state = self._states.get(name) or DestinationState(name=name)
        state.broken, state.reason, state.last_error = True, error, error
        self._states[name] = state
        await self._store.save_destination(state)
        log.error("destination_gone", destination=name, error=error)

    async def _fail_all(self, rows: Sequence[OutboxEntry], error: str) -> None:
        now = self._clock.now()
        for r in rows:
            await self._store.mark_failed(r.id, now, error)

    async def _defer(self, rows: Sequence[OutboxEntry], name: str) -> None:
        """Hand rows back until the destination's rate allows them."""
        slot = self._pace[name].next_slot(self._clock.monotonic()) - self._clock.monotonic()
        when = self._clock.now() + timedelta(seconds=max(0.0, slot))
        for r in rows:
            await self._store.mark_retry(r.id, when, "deferred: rate limit")

    async def _note(
        self, name: str, *, success: datetime | None = None, error: str | None = None
    ) -> None:
        """Keep the destination's health in the store, writing only on change."""
        state = self._states.get(name) or DestinationState(name=name)
        changed = name not in self._states
        if success is not None:
            stale = state.last_success is None or success - state.last_success > timedelta(
                seconds=30
            )
            changed = changed or state.last_error is not None or stale
            state.last_success, state.last_error = success, None
        if error is not None:
            changed = changed or state.last_error != error
            state.last_error = error
        self._states[name] = state
        if changed:
            await self._store.save_destination(state)

    # ------------------------------------------------------------------ helpers

    def _edits_in_place(self, name: str, notifier: Notifier, alert: Alert) -> bool:
        """Source updates always go the edit path (skipped where editing is impossible);
        a follow-up edits the original where it can and is posted as a reply elsewhere."""
        if alert.edit_of:
            return True
        return (
            alert.kind == "followup"
            and alert.reply_to is not None
            and notifier.can_edit
            and (name, alert.reply_to) in self._messages
        )

    def _remember(self, name: str, key: str, ref: str, alert: Alert, edited: bool = False) -> None:
        """Keep what a later edit of this message needs: news alerts only (updates and
        follow-ups edit those). A first post keeps its ref alone; an edit also keeps
        the sources and prices it put on the message."""
        if alert.kind != "news":
            return
        posted = _Posted(ref, alert.sources, alert.prices) if edited else _Posted(ref)
        self._messages[(name, key)] = posted
        self._messages.move_to_end((name, key))
        while len(self._messages) > MESSAGES_KEPT:
            self._messages.popitem(last=False)

    def _report(self, name: str, outcome: str, alert: Alert, latency_s: float | None) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(name, outcome, alert, latency_s)
        except Exception as e:  # an observer must never stop delivery
            log.warning("dispatch_hook_failed", error=redact(repr(e)))

    def _trim_recent(self, name: str, now: float) -> None:
        window = self._dest.get(name, Destination(name)).digest_window_s
        self._recent[name] = [t for t in self._recent[name] if now - t < window]

    def _states_stale(self) -> bool:
        age = self._clock.monotonic() - self._states_loaded_at
        return age > STATES_REFRESH_S or any(s.broken for s in self._states.values())

    async def _load_states(self) -> None:
        self._states = {s.name: s for s in await self._store.load_destinations()}
        self._states_loaded_at = self._clock.monotonic()

    async def _due_soon(self, end: float) -> bool:
        """True when some open row becomes due before the monotonic `end`."""
        horizon = self._clock.now() + timedelta(seconds=max(0.0, end - self._clock.monotonic()))
        rows = await self._store.list_outbox(("pending", "sending"))
        return any(r.next_attempt_at <= horizon for r in rows)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        """End the idle pause when `stop` is set, so that stopping does not wait it out."""
        await stop.wait()
        self.wake()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait until `wake` (or stop) or `idle_s` has passed, whichever comes first."""
        if self._wake.is_set() or stop.is_set():
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._cfg.idle_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    """Let whoever awaits `waiter` go on (nothing if none does, or it already went)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
