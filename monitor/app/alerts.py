"""From analyses of new articles to stories and outbox entries.

`AlertBuilder.build` is what the poller's `on_new` hook returns: for every
article that matched a rule it finds the story it belongs to (recent stories
from the store plus those this builder created moments ago), and only a story
seen for the first time becomes an alert, routed to its destinations and
keyed by story so each destination gets it once. A copy of a known story adds
its source to the story record and queues an update (`edit_of`) that lets a
destination able to edit (Discord) list the new source on the message it
already posted; the others skip it. Both go back to the poller, which
commits them in the transaction that marks the articles seen.

The stories of the window (36 hours by default: hundreds of them) are kept in
memory rather than read and decoded from the store on every build, which cost
milliseconds per build and grew with the window. Each build reads only the
stories first seen lately (another instance's new stories show up at once);
the whole window is read again every few minutes, which is as late as a source
another instance added to an older story can show up here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import Config, NotifierConfig
from monitor.core.clock import Clock
from monitor.core.models import Alert, Analysis, Article, PriceContext, SourceRef, Stance
from monitor.core.redact import redact
from monitor.core.routing import (
    Cooldowns,
    Destination,
    Verdict,
    gate,
    highest_severity,
    parse_quiet_hours,
    route,
    targets,
)
from monitor.core.stories import Story, TitleIndex, display_title, find_story, new_story
from monitor.logs import get_logger
from monitor.ports import NewOutboxEntry, Store, StoryRecord

log = get_logger(__name__)

PriceContextFn = Callable[[Article], Sequence[PriceContext]]
ChartFn = Callable[[Article], bytes | None]  # a PNG of the price around the article
SUMMARY_MAX = 600
PROVISIONAL_S = 600.0  # stories built here stay matchable while their commit lands
STORIES_REFRESH_S = 300.0  # the whole story window is read from the store this often
# Each build reads the stories first seen since the previous read, less this margin:
# stories another instance was committing meanwhile, or stamped by a clock behind ours.
STORIES_OVERLAP_S = 30.0
# At most this many of the window's stories are kept in memory, the newest: a few
# days' worth for a busy desk, about 1 KB each. Past it, a repeat of an older story
# would alert again rather than memory grow with the rate of news.
STORIES_KEPT = 10_000


def destination_from_config(n: NotifierConfig) -> Destination:
    quiet = parse_quiet_hours(n.quiet_hours, n.quiet_timezone) if n.quiet_hours else None
    return Destination(
        name=n.name,
        min_severity=n.min_severity,
        quiet=quiet,
        digest_threshold=n.digest_threshold,
        digest_window_s=n.digest_window,
    )


def destinations_from_config(config: Config) -> dict[str, Destination]:
    """Routing view of every configured notifier, by name (the Dispatcher takes it too)."""
    return {n.name: destination_from_config(n) for n in config.notifiers}


def story_from_record(r: StoryRecord) -> Story:
    return Story(
        r.key,
        r.title_norm,
        r.first_seen,
        tuple(r.figures),
        tuple(SourceRef.from_dict(s) for s in r.sources),
    )


def _unchanged(story: Story, r: StoryRecord) -> bool:
    """Whether `r` is the record of `story` as held: the same sources, field for
    field (an instance saving a story writes its whole list of sources)."""
    return (
        story.first_seen == r.first_seen
        and story.figures == tuple(r.figures)
        and len(story.sources) == len(r.sources)
        and all(s.to_dict() == d for s, d in zip(story.sources, r.sources, strict=True))
    )


def story_to_record(s: Story) -> StoryRecord:
    return StoryRecord(
        key=s.key,
        title_norm=s.title_norm,
        first_seen=s.first_seen,
        sources=tuple(r.to_dict() for r in s.sources),
        figures=s.figures,
    )


def source_of(article: Article) -> SourceRef:
    return SourceRef(
        feed=article.feed,
        source=article.source or article.feed,
        title=article.title,
        link=article.link,
        lang=article.lang,
    )


def _stances(analysis: Analysis) -> tuple[Stance, ...]:
    # Nvidia first: it is the desk's reference stock; then by target name.
    return tuple(sorted(analysis.stance.values(), key=lambda s: (s.target != "nvidia", s.target)))


@dataclass(slots=True)
class _NewStory:
    story: Story
    first: Analysis


class AlertBuilder:
    """Builds news alerts for new articles and enqueues alerts from elsewhere."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        clock: Clock,
        destinations: Sequence[str] | None = None,
        price_context: PriceContextFn | None = None,
        chart: ChartFn | None = None,
    ) -> None:
        routes = destinations_from_config(config)
        names = list(destinations) if destinations is not None else list(routes)
        self._destinations = [routes.get(n, Destination(n)) for n in names]
        self._store = store
        self._clock = clock
        self._window = config.dispatch.story_window
        self._price_context = price_context
        self._chart = chart
        self._cooldowns = Cooldowns()
        self._provisional: dict[str, Story] = {}
        self._stored: dict[str, Story] = {}  # the store's stories of the window, as last read
        self._stored_read_at: datetime | None = None  # when the last read was made
        self._stored_full_at = -math.inf  # monotonic time of the last read of the whole window
        self._index = TitleIndex()  # title bigrams of the stories a build compares against

    async def build(
        self, analyses: Sequence[Analysis]
    ) -> tuple[list[StoryRecord], list[NewOutboxEntry]]:
        """Stories to upsert and outbox entries to enqueue for `analyses` (those with rules)."""
        matched = [a for a in analyses if a.rules]
        if not matched:
            return [], []
        now = self._clock.now()
        since = now - timedelta(seconds=self._window)
        known = await self._stored_stories(now, since)
        self._forget_provisional(now)
        for key, mine in self._provisional.items():
            known[key] = _merge(known.get(key), mine)
        self._index.retain(known)  # index the titles a build compares against, only those
        touched: dict[str, Story] = {}
        fresh: dict[str, _NewStory] = {}
        grown: dict[str, Analysis] = {}  # known stories that gained a source
        for analysis in matched:
            art = analysis.article
            ref = source_of(art)
            found = find_story(
                art.title, known.values(), now, self._window, lang=art.lang, index=self._index
            )
            if found is None:
                story = new_story(art.title, now, ref)
                if story.key in known:  # the same title again: it is that story
                    story = known[story.key].with_source(ref)
                else:
                    fresh[story.key] = _NewStory(story, analysis)
            else:
                story = found.with_source(ref)
                if story is not found and story.key not in fresh:
                    grown[story.key] = analysis
            known[story.key] = touched[story.key] = story
            self._index.add(story)
            if story.key in fresh:
                fresh[story.key].story = story
        entries = [e for item in fresh.values() for e in self._route(item, now)]
        entries += [e for key, an in grown.items() for e in self._update(known[key], an, now)]
        for story in touched.values():
            self._provisional[story.key] = story
        joined = len(matched) - len(fresh)
        log.info(
            "stories_built",
            articles=len(matched),
            new_stories=len(fresh),
            joined_known=joined,
            entries=len(entries),
        )
        return [story_to_record(s) for s in touched.values()], entries

    async def enqueue_alerts(self, alerts: Sequence[Alert]) -> list[int]:
        """Route alerts that come from no feed (price moves, follow-ups) and enqueue them."""
        now = self._clock.now()
        entries: list[NewOutboxEntry] = []
        for alert in alerts:
            for dest in self._destinations:
                verdict = gate(dest, alert.severity, now)
                if verdict is Verdict.SEND:
                    entries.append(NewOutboxEntry(dest.name, alert, alert.key))
                else:
                    log.info(
                        "alert_suppressed",
                        destination=dest.name,
                        key=alert.key,
                        reason=verdict.value,
                    )
        return await self._store.enqueue(entries) if entries else []

    # ------------------------------------------------------------------ helpers

    async def _stored_stories(self, now: datetime, since: datetime) -> dict[str, Story]:
        """The store's stories first seen since `since`: the whole window now and then,
        else only those first seen since the previous read (minus a margin)."""
        full = self._clock.monotonic() - self._stored_full_at >= STORIES_REFRESH_S
        held = self._stored
        if full or self._stored_read_at is None:
            records = await self._store.recent_stories(since)
            self._stored = {}
            self._stored_full_at = self._clock.monotonic()
        else:
            lately = self._stored_read_at - timedelta(seconds=STORIES_OVERLAP_S)
            records = await self._store.recent_stories(max(since, lately))
        self._stored_read_at = now
        for r in records:
            # A story read as it is held, or as this builder made it, is kept as that
            # object: no second copy of its strings (the title index holds them too),
            # and no churn of thousands of objects on each full read.
            story = held.get(r.key)
            mine = self._provisional.get(r.key)
            if story is None or not _unchanged(story, r):
                story = mine if mine is not None and _unchanged(mine, r) else story_from_record(r)
            self._stored[r.key] = story
            if mine is not None and set(mine.sources) <= set(story.sources):
                del self._provisional[r.key]  # our commit landed: the store's copy will do
        kept = {k: s for k, s in self._stored.items() if s.first_seen >= since}
        if len(kept) > STORIES_KEPT:
            newest = sorted(kept.values(), key=lambda s: s.first_seen)[-STORIES_KEPT:]
            kept = {s.key: s for s in newest}
        self._stored = kept
        return dict(kept)

    def _route(self, item: _NewStory, now: datetime) -> list[NewOutboxEntry]:
        analysis = item.first
        labels = {t: s.label.value for t, s in analysis.stance.items()}
        verdicts = route(
            analysis.rules, analysis.entities, self._destinations, now, self._cooldowns, labels
        )
        wanted = [d for d, v in verdicts.items() if v is Verdict.SEND]
        for d, v in verdicts.items():
            if v not in (Verdict.SEND, Verdict.NOT_ADDRESSED):
                log.info("alert_suppressed", destination=d, key=item.story.key, reason=v.value)
        unknown = {d for r in analysis.rules for d in r.destinations} - set(verdicts)
        if unknown:
            log.warning(
                "rule_names_unknown_destination",
                destinations=",".join(sorted(unknown)),
                rules=",".join(r.rule_id for r in analysis.rules),
            )
        if not wanted:
            return []
        alert = self._alert(item.story, analysis, now)
        return [NewOutboxEntry(d, alert, item.story.key) for d in wanted]

    def _update(self, story: Story, analysis: Analysis, now: datetime) -> list[NewOutboxEntry]:
        """Entries that let a destination edit its message to list the story's new sources."""
        update = Alert(
            kind="news",
            key=story.key,
            title=display_title(analysis.article.title),
            created_at=now,
            sources=story.sources,
            edit_of=story.key,
        )
        names = targets(analysis.rules, [d.name for d in self._destinations])
        key = f"{story.key}+{len(story.sources)}"
        return [NewOutboxEntry(d, update, key) for d in names]

    def _alert(self, story: Story, analysis: Analysis, now: datetime) -> Alert:
        art = analysis.article
        prices: tuple[PriceContext, ...] = ()
        if self._price_context is not None:
            try:
                prices = tuple(self._price_context(art))
            except Exception as e:  # price context is garnish: never lose the alert over it
                log.warning("price_context_failed", error=redact(repr(e)))
        chart = ""
        if self._chart is not None:
            try:
                png = self._chart(art)
                chart = base64.b64encode(png).decode("ascii") if png else ""
            except Exception as e:  # likewise: the alert goes out without a picture
                log.warning("chart_failed", error=redact(repr(e)))
        return Alert(
            kind="news",
            key=story.key,
            title=display_title(art.title),
            created_at=now,
            link=art.link,
            lang=art.lang,
            source=art.source or art.feed,
            published=art.published,
            summary=art.text[:SUMMARY_MAX],
            severity=highest_severity(analysis.rules),
            rules=tuple(r.rule_id for r in analysis.rules),
            rule_titles=tuple(r.title for r in analysis.rules),
            entities=tuple(analysis.entities),
            stance=_stances(analysis),
            prices=prices,
            urgency=art.urgency,
            sources=story.sources,
            chart_png=chart,
        )

    def _forget_provisional(self, now: datetime) -> None:
        cutoff = now - timedelta(seconds=PROVISIONAL_S)
        self._provisional = {k: s for k, s in self._provisional.items() if s.first_seen >= cutoff}
        self._cooldowns.forget_before(now - timedelta(seconds=self._window))


def _merge(stored: Story | None, mine: Story) -> Story:
    if stored is None:
        return mine
    out = stored
    for ref in mine.sources:
        out = out.with_source(ref)
    return out
