"""One story, one alert: from analyses to outbox entries, and on to a fake Discord."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from monitor.app import alerts as alerts_module
from monitor.app.alerts import STORIES_REFRESH_S, AlertBuilder, destinations_from_config
from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.clock import SystemClock
from monitor.config import Config, NotifierConfig
from monitor.core.chart import render_chart
from monitor.core.models import Alert, Session
from monitor.notifiers.registry import make_notifier
from monitor.ports import FeedState, NewOutboxEntry, StoryRecord
from monitor.store import open_store
from tests.conftest import FakeClock
from tests.fakes.alerts import T0, analysis, article, bearish_nvidia, nvda, rule
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack

WIRE = "[속보] 딥시크 충격에 엔비디아 주가 급락"
UPDATE = "[종합] 딥시크 충격에 엔비디아 주가 급락…AI 칩 수요 논란"
GNEWS = "딥시크 충격에 엔비디아 주가 급락 - 한국경제"


def config(*notifiers: NotifierConfig) -> Config:
    return Config(
        notifiers=list(notifiers)
        or [
            NotifierConfig(name="desk", kind="discord", url_env="D"),
            NotifierConfig(name="team", kind="slack", url_env="S", min_severity="warning"),
        ]
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[object]:
    s = open_store(f"sqlite:///{tmp_path}/monitor.db")
    await s.open()
    yield s
    await s.close()


def three_copies(clock: FakeClock) -> list:
    return [
        analysis(
            article("yonhap-economy", WIRE, source="연합뉴스", seen=clock.now()),
            stance=(bearish_nvidia(),),
        ),
        analysis(article("hankyung-it", UPDATE, source="한국경제", seen=clock.now())),
        analysis(article("gnews-ko-nvidia", GNEWS, source="Google 뉴스", seen=clock.now())),
    ]


async def commit(store, stories: list[StoryRecord], entries: list[NewOutboxEntry]) -> None:
    await store.commit_poll(FeedState(name="yonhap-economy"), [], stories, entries)


async def test_three_feeds_carrying_one_story_give_one_alert_listing_three_sources(store, clock):
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    stories, entries = await builder.build(three_copies(clock))

    assert [e.destination for e in entries] == ["desk", "team"]
    alert = entries[0].alert
    assert alert.title == "딥시크 충격에 엔비디아 주가 급락" and alert.urgency == ("속보",)
    assert [s.source for s in alert.sources] == ["연합뉴스", "한국경제", "Google 뉴스"]
    assert entries[0].dedupe_key == entries[1].dedupe_key == alert.key
    assert [len(s.sources) for s in stories] == [3]
    assert alert.stance[0].label.value == "bearish"


async def test_copies_in_later_polls_join_the_story_without_a_new_alert(store, clock):
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    a, b, c = three_copies(clock)
    first = await builder.build([a])
    await commit(store, *first)
    clock.advance(600)
    second = await builder.build([b])
    await commit(store, *second)
    clock.advance(600)
    # a fresh builder (a restart) knows the story from the store alone
    again = AlertBuilder(config=config(), store=store, clock=clock)
    third = await again.build([c])
    await commit(store, *third)

    key = first[1][0].alert.key
    assert [e.alert.edit_of for e in first[1]] == [None, None]
    # later copies only queue updates of the message already posted
    assert [(e.alert.edit_of, e.dedupe_key) for e in second[1]] == [(key, f"{key}+2")] * 2
    assert [len(e.alert.sources) for e in third[1]] == [3, 3]
    [record] = await store.recent_stories(T0 - timedelta(days=1))
    assert [s["feed"] for s in record.sources] == [
        "yonhap-economy",
        "hankyung-it",
        "gnews-ko-nvidia",
    ]


async def test_a_story_another_instance_stored_is_joined_not_alerted_again(store, clock):
    """Two instances share the store; each has built before, so each knows the window."""
    here = AlertBuilder(config=config(), store=store, clock=clock)
    there = AlertBuilder(config=config(), store=store, clock=clock)
    warm = analysis(article("yna", "TSMC 설비투자 확대"), rule("capex"))
    await commit(store, *await here.build([warm]))
    await there.build([warm])
    a, b, c = three_copies(clock)
    clock.advance(30)
    first = await there.build([a])  # the other instance alerts the story
    await commit(store, *first)
    clock.advance(30)
    _, joined = await here.build([b])  # a copy reaching this one joins it
    assert [e.alert.edit_of for e in joined] == [first[1][0].alert.key] * 2
    # Once the whole window has been read again, a source the other instance added
    # to the story meanwhile is listed too.
    await commit(store, *await there.build([c]))
    clock.advance(STORIES_REFRESH_S)
    stories, _ = await here.build([b])
    assert [[s["feed"] for s in r.sources] for r in stories] == [
        ["yonhap-economy", "gnews-ko-nvidia", "hankyung-it"]
    ]


async def test_a_full_read_of_an_unchanged_window_keeps_the_stories_it_holds(store, clock):
    """Every few minutes the whole window is read again: stories read as they were
    are kept as held, not rebuilt (thousands of objects, and their strings twice).
    Likewise a story this builder made, once the store gives it back unchanged."""
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    for title in ("TSMC 설비투자 확대", "삼성전자 HBM 공급 계약"):
        await commit(store, *await builder.build([analysis(article("yna", title), rule("x"))]))
        clock.advance(60)
    made = dict(builder._provisional)
    await builder.build([analysis(article("mk", "엔비디아 블랙웰 출하 지연"), rule("x"))])
    held = dict(builder._stored)
    assert len(held) == 2
    # what the store gave back is what this builder made: that object is kept
    assert all(held[k] is story for k, story in made.items())
    clock.advance(STORIES_REFRESH_S)
    await builder.build([analysis(article("mk", "SK하이닉스 HBM4 양산"), rule("x"))])
    assert all(builder._stored[k] is story for k, story in held.items())


async def test_a_full_read_takes_another_instances_version_of_a_source_list(store, clock):
    """Saving a story writes its whole list of sources: when another instance saved a
    list that differs from the one held here, even only in a linkless item's title,
    the full read of the window replaces what is held."""
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    wire = article("yna", "삼성전자 HBM 공급 계약 체결")
    blog = replace(article("blog", "삼성전자 HBM 공급 계약 체결 - 블로그A"), link="")
    await commit(store, *await builder.build([analysis(wire, rule("x"))]))
    clock.advance(60)
    await commit(store, *await builder.build([analysis(blog, rule("x"))]))
    clock.advance(60)
    await builder.build([analysis(article("mk", "엔비디아 블랙웰 출하 지연"), rule("x"))])
    [held] = [r for r in await store.recent_stories(T0 - timedelta(days=1)) if len(r.sources) == 2]
    theirs = dict(held.sources[1], title="삼성전자 HBM 공급 계약 체결 - 블로그B", source="블로그B")
    other = StoryRecord(held.key, held.title_norm, held.first_seen, (held.sources[0], theirs))
    await commit(store, [other], [])
    clock.advance(STORIES_REFRESH_S)
    await builder.build([analysis(article("mk", "SK하이닉스 HBM4 양산"), rule("x"))])
    copy = analysis(article("hk", "삼성전자 HBM 공급 계약 체결"), rule("x"))
    stories, _ = await builder.build([copy])
    [saved] = stories
    assert [s["source"] for s in saved.sources][:2] == [held.sources[0]["source"], "블로그B"]


async def test_stories_kept_in_memory_are_bounded_newest_first(store, clock, monkeypatch):
    monkeypatch.setattr(alerts_module, "STORIES_KEPT", 2)
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    titles = ["TSMC 설비투자 확대", "삼성전자 HBM 공급 계약", "엔비디아 블랙웰 출하 지연"]
    for title in titles:
        await commit(store, *await builder.build([analysis(article("yna", title), rule("x"))]))
        clock.advance(60)
    # the two newest are still known: a copy joins them
    _, joined = await builder.build([analysis(article("mk", titles[2]), rule("x"))])
    assert joined and all(e.alert.edit_of for e in joined)
    # the oldest fell out of memory: past the bound a repeat alerts again
    _, again = await builder.build([analysis(article("mk", titles[0]), rule("x"))])
    assert again and not any(e.alert.edit_of for e in again)


async def test_a_later_version_with_new_figures_is_a_new_alert(store, clock):
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    first = await builder.build([analysis(article("yna", "엔비디아 주가 5% 급락"))])
    await commit(store, *first)
    clock.advance(3600)
    second = await builder.build([analysis(article("yna", "[종합] 엔비디아 주가 17% 급락"))])
    assert second[1] and second[1][0].alert.key != first[1][0].alert.key


async def test_rules_pick_destinations_and_severity_floors_apply(store, clock):
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    _, to_desk = await builder.build(
        [analysis(article("yna", "TSMC 설비투자 확대"), rule("capex", destinations=("desk",)))]
    )
    _, info_only = await builder.build(
        [analysis(article("yna", "SK하이닉스 HBM 공급 계약"), rule("hbm", severity="info"))]
    )
    _, nothing = await builder.build([])
    assert [e.destination for e in to_desk] == ["desk"]
    assert [e.destination for e in info_only] == ["desk"]  # the team wants warning and up
    assert nothing == []


async def test_price_context_is_attached_and_its_failure_loses_nothing(store, clock):
    seen: list[str] = []

    def prices(art):
        seen.append(art.feed)
        return (nvda(),)

    def broken(art):
        raise RuntimeError("price book empty")

    ok = AlertBuilder(config=config(), store=store, clock=clock, price_context=prices)
    _, entries = await ok.build([analysis(article("yna", "엔비디아 급락"))])
    assert entries[0].alert.prices[0].session is Session.REGULAR and seen == ["yna"]
    bad = AlertBuilder(config=config(), store=store, clock=clock, price_context=broken)
    _, entries = await bad.build([analysis(article("yna", "딥시크 충격 확산"))])
    assert entries and entries[0].alert.prices == ()


async def test_moves_and_other_alerts_are_enqueued_with_the_gates(store, clock):
    if not hasattr(store, "enqueue"):
        pytest.skip("the store does not implement Store.enqueue yet")
    builder = AlertBuilder(config=config(), store=store, clock=clock)
    move = Alert(
        kind="move",
        key="move:NVDA:2025-01-27:-5",
        title="NVDA -5.02% in 10 min",
        created_at=clock.now(),
        severity="notice",
    )
    ids = await builder.enqueue_alerts([move])
    rows = await store.list_outbox()
    assert len(ids) == 1 and [r.destination for r in rows] == ["desk"]


def test_destinations_carry_their_routing_settings() -> None:
    cfg = Config(
        notifiers=[
            NotifierConfig(
                name="night",
                kind="console",
                quiet_hours="22:00-07:00",
                digest_threshold=3,
                digest_window=60,
            )
        ]
    )
    night = destinations_from_config(cfg)["night"]
    assert night.quiet is not None and night.digest_threshold == 3
    assert night.digest_window_s == 60.0


async def test_three_feeds_reach_discord_as_one_message(store, clock):
    builder = AlertBuilder(
        config=config(NotifierConfig(name="desk", kind="discord", url_env="D")),
        store=store,
        clock=clock,
    )
    await commit(store, *await builder.build(three_copies(clock)))
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        desk = make_notifier(
            NotifierConfig(name="desk", kind="discord", url_env="D"), session, fake.url
        )
        d = Dispatcher(
            store, {"desk": desk}, SystemClock(), "test", settings=DispatchSettings(idle_s=0.02)
        )
        assert await d.drain(5.0) == 0
    [body] = fake.delivered()
    fields = {f["name"]: f["value"] for f in body["embeds"][0]["fields"]}
    sources = fields["Sources (3)"]
    assert "연합뉴스" in sources and "한국경제" in sources and "Google 뉴스" in sources


async def test_a_copy_in_a_later_poll_edits_the_discord_message_and_never_pings_twice(store, clock):
    notifiers = [
        NotifierConfig(name="desk", kind="discord", url_env="D"),
        NotifierConfig(name="team", kind="slack", url_env="S"),
    ]
    builder = AlertBuilder(config=config(*notifiers), store=store, clock=clock)
    a, b, c = three_copies(clock)
    async with FakeDiscord() as discord, FakeSlack() as slack, aiohttp.ClientSession() as s:
        urls = {"desk": discord.url, "team": slack.url}
        d = Dispatcher(
            store,
            {n.name: make_notifier(n, s, urls[n.name]) for n in notifiers},
            SystemClock(),
            "test",
            settings=DispatchSettings(idle_s=0.02),
        )
        for copy in (a, b, c):
            await commit(store, *await builder.build([copy]))
            clock.advance(300)
            assert await d.drain(5.0) == 0

    assert [r.method for r in discord.received] == ["POST", "PATCH", "PATCH"]
    [message] = discord.messages.values()
    fields = {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}
    assert "Google 뉴스" in fields["Sources (3)"] and "한국경제" in fields["Sources (3)"]
    assert message["embeds"][0]["title"] == "[속보] 딥시크 충격에 엔비디아 주가 급락"
    # Apart from its sources, the edited message shows exactly what the first post showed.
    posted, edited = discord.received[0].body["embeds"][0], discord.received[-1].body["embeds"][0]
    assert {k: v for k, v in posted.items() if k != "fields"} == {
        k: v for k, v in edited.items() if k != "fields"
    }
    kept = [f for f in posted["fields"] if not f["name"].startswith("Source")]
    assert kept and kept == [f for f in edited["fields"] if not f["name"].startswith("Source")]
    assert len(slack.received) == 1  # Slack cannot edit: the update is skipped, not re-sent


@pytest.mark.parametrize("charts_on", [True, False])
async def test_discord_gets_the_price_chart_as_an_attachment(store, clock, charts_on: bool):
    points = [(T0 + timedelta(minutes=i), 140.0 - i * 0.5) for i in range(30)]

    def chart(art):
        return render_chart(points, 142.62, art.published)

    desk = NotifierConfig(name="desk", kind="discord", url_env="D", chart=charts_on)
    builder = AlertBuilder(config=config(desk), store=store, clock=clock, chart=chart)
    await commit(store, *await builder.build(three_copies(clock)[:1]))
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        d = Dispatcher(
            store,
            {"desk": make_notifier(desk, session, fake.url)},
            SystemClock(),
            "test",
            settings=DispatchSettings(idle_s=0.02),
        )
        assert await d.drain(5.0) == 0
    [post] = fake.posts()
    assert post.status == 200
    if charts_on:
        assert post.headers["Content-Type"].startswith("multipart/form-data")
        assert post.files["chart.png"].startswith(b"\x89PNG\r\n\x1a\n")
        assert post.body["embeds"][0]["image"] == {"url": "attachment://chart.png"}
        assert post.body["allowed_mentions"] == {"parse": []}
    else:
        assert post.files == {} and "image" not in post.body["embeds"][0]


DESK = NotifierConfig(name="desk", kind="discord", url_env="D")


def desk_dispatcher(store, session: aiohttp.ClientSession, url: str) -> Dispatcher:
    """A dispatcher sending to one Discord destination, `desk`, at `url`."""
    notifier = make_notifier(DESK, session, url)
    settings = DispatchSettings(idle_s=0.02)
    return Dispatcher(store, {"desk": notifier}, SystemClock(), "test", settings=settings)


def _fields(message: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


async def test_a_source_edit_after_a_followup_keeps_the_followups_price(store, clock):
    """Each edit starts from what the message shows: the first post's alert, read back
    from its outbox row, with what earlier edits put on it."""
    builder = AlertBuilder(config=config(DESK), store=store, clock=clock)
    a, b, _ = three_copies(clock)
    async with FakeDiscord() as discord, aiohttp.ClientSession() as s:
        d = desk_dispatcher(store, s, discord.url)
        stories, entries = await builder.build([a])
        await commit(store, stories, entries)
        assert await d.drain(5.0) == 0
        key = entries[0].dedupe_key
        followup = Alert(
            kind="followup",
            key=f"{key}+15m",
            title="NVDA 15 minutes on",
            created_at=clock.now(),
            reply_to=key,
            prices=(replace(nvda(), price=131.25),),
        )
        await store.enqueue([NewOutboxEntry("desk", followup, followup.key)])
        assert await d.drain(5.0) == 0
        clock.advance(300)
        await commit(store, *await builder.build([b]))
        assert await d.drain(5.0) == 0

    assert [r.method for r in discord.received] == ["POST", "PATCH", "PATCH"]
    [message] = discord.messages.values()
    fields = _fields(message)
    assert "한국경제" in fields["Sources (2)"]
    assert "131.25" in fields["NVDA"]
    assert message["embeds"][0]["title"] == "[속보] 딥시크 충격에 엔비디아 주가 급락"


async def test_an_edit_whose_first_post_left_the_store_is_skipped(store, clock, tmp_path):
    """The original alert is read back from its outbox row: once that row is pruned
    the message cannot be shown again, so the update is marked done, not posted."""
    builder = AlertBuilder(config=config(DESK), store=store, clock=clock)
    a, b, _ = three_copies(clock)
    async with FakeDiscord() as discord, aiohttp.ClientSession() as s:
        d = desk_dispatcher(store, s, discord.url)
        stories, entries = await builder.build([a])
        await commit(store, stories, entries)
        assert await d.drain(5.0) == 0
        with sqlite3.connect(tmp_path / "monitor.db") as db:
            db.execute("DELETE FROM outbox WHERE dedupe_key = ?", (entries[0].dedupe_key,))
        clock.advance(300)
        await commit(store, *await builder.build([b]))
        assert await d.drain(5.0) == 0  # nothing left pending

    assert [r.method for r in discord.received] == ["POST"]
    assert await store.outbox_depth() == 0
