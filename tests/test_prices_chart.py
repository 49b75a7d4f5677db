"""The intraday chart: a valid PNG that shows the line, the previous close and the mark."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from monitor.app.metrics import Metrics
from monitor.app.pricing import _NEW_YORK, PriceTracker
from monitor.config import PricesConfig
from monitor.core.chart import (
    BACKGROUND,
    CLOSE_LINE,
    DOWN,
    MARK,
    UP,
    ChartBase,
    chart_base,
    finish_chart,
    render_chart,
    render_symbol_chart,
)
from monitor.core.models import Article, PriceTick
from monitor.core.pricebook import PriceBook, SessionInfo
from tests.conftest import FakeClock

T0 = datetime(2025, 1, 27, 14, 30, tzinfo=UTC)


def decode(png: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """A strict little PNG reader for what render_chart writes (8-bit indexed
    colour, filter 0), giving each pixel's RGB."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc
        chunks.append((kind, data))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]
    width, height, depth, ctype, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, ctype) == (8, 3)
    plte = chunks[1][1]
    assert len(plte) % 3 == 0 and 0 < len(plte) <= 256 * 3
    palette = [tuple(plte[i : i + 3]) for i in range(0, len(plte), 3)]
    raw = zlib.decompress(chunks[2][1])
    stride = width + 1
    assert len(raw) == stride * height
    rows = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        rows.append([palette[i] for i in row[1:]])
    return width, height, rows  # type: ignore[return-value]


def falling_day() -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(minutes=m), 125.0 - m * 0.02) for m in range(390)]


def test_png_shows_line_close_and_mark() -> None:
    mark = T0 + timedelta(minutes=301)
    png = render_chart(falling_day(), 142.62, mark, 400, 200)
    width, height, rows = decode(png)
    assert (width, height) == (400, 200)
    colours = {c for row in rows for c in row}
    assert {BACKGROUND, DOWN, CLOSE_LINE, MARK} <= colours
    assert UP not in colours  # below the previous close all day: red
    # The marker is a vertical line: one column, amber from near the top to the bottom.
    mark_columns = [x for x in range(width) if sum(rows[y][x] == MARK for y in range(height)) > 100]
    plot_left, plot_right = 6, 400 - 62  # the plot area inside the margins
    expected_x = plot_left + (plot_right - plot_left) * 301 / 389
    assert mark_columns and abs(mark_columns[0] - expected_x) <= 2
    # The previous close is a dashed horizontal line near the top (it is the highest price).
    close_rows = [y for y in range(height) if sum(c == CLOSE_LINE for c in rows[y]) > 100]
    assert close_rows and close_rows[0] < 40


def test_rising_day_is_green_and_a_mark_outside_the_range_is_not_drawn() -> None:
    rising = [(T0 + timedelta(minutes=m), 100.0 + m * 0.01) for m in range(120)]
    _, _, rows = decode(render_chart(rising, 99.0, T0 - timedelta(hours=2), 320, 160))
    colours = {c for row in rows for c in row}
    assert UP in colours and DOWN not in colours and MARK not in colours


@pytest.mark.parametrize("points", [[], [(T0, 100.0)]])
def test_too_few_points_give_an_empty_frame(points: list[tuple[datetime, float]]) -> None:
    width, height, _ = decode(render_chart(points, None, None, 200, 100))
    assert (width, height) == (200, 100)


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError):
        render_chart(falling_day(), None, None, 50, 50)


def test_chart_from_the_book() -> None:
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=142.62))
    book.add_many(PriceTick("NVDA", p, t, "yahoo") for t, p in falling_day())
    now = T0 + timedelta(minutes=390)
    png = render_symbol_chart(book, "NVDA", now, hours=2, mark_at=now - timedelta(minutes=30))
    assert png is not None
    assert decode(png)[:2] == (640, 320)
    assert render_symbol_chart(book, "AMD", now) is None
    assert len(png) < 50_000  # small enough to attach anywhere


def test_a_steep_price_move_is_drawn_without_gaps() -> None:
    from monitor.core.chart import _Canvas

    canvas = _Canvas(40, 60, (0, 0, 0))
    canvas.line(10, 5, 12, 50, (255, 255, 255))  # a plunge: 45 rows over 2 columns
    w = canvas.width
    lit = {(x, y) for y in range(60) for x in range(w) if canvas.rgb(x, y) == (255, 255, 255)}
    assert all(any((x, y) in lit for x in range(10, 14)) for y in range(5, 51))
    assert all(10 <= x <= 13 and 5 <= y <= 51 for x, y in lit)


@pytest.mark.parametrize("minute", [0, 1, 150, 301, 388, 389])
def test_the_marker_lies_beneath_the_price_line_and_label_only(minute: int) -> None:
    """A chart is drawn once and each article adds its marker: the result must be the
    picture drawn in order, the marker over grid, axis and close line, under the line."""
    points = [(T0 + timedelta(minutes=m), 125.0 + (m % 40) * 0.4) for m in range(390)]
    base = chart_base(points, 130.0)
    plain = decode(finish_chart(base, None))[2]
    marked = decode(finish_chart(base, T0 + timedelta(minutes=minute)))[2]
    changed = {
        (x, y) for y, row in enumerate(marked) for x, c in enumerate(row) if c != plain[y][x]
    }
    assert changed and all(marked[y][x] == MARK for x, y in changed)
    line = {(x, y) for y, row in enumerate(plain) for x, c in enumerate(row) if c in (UP, DOWN)}
    assert not changed & line  # the price line stays on top
    xs = sorted({x for x, _ in changed})
    assert xs[-1] - xs[0] <= 9  # two columns and the small triangle around them
    # Full height between the plot's top and bottom, wherever the line is not.
    for x in {x for x, y in changed if y > base.top + 5}:
        column = [y for y in range(base.top, base.bottom + 1) if (x, y) not in line]
        assert all(marked[y][x] == MARK for y in column if (x, y) not in label_area(base))


def label_area(base: ChartBase) -> set[tuple[int, int]]:
    return {(x, y) for y in range(base.top, base.top + 14) for x in range(base.left, 200)}


def test_a_prepared_chart_is_the_one_rendered_for_the_article_and_follows_new_prices() -> None:
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=142.62))
    book.add_many(PriceTick("NVDA", p, t, "yahoo") for t, p in falling_day()[:200])
    now = T0 + timedelta(minutes=200, seconds=20)
    published = now - timedelta(minutes=3)
    tracker = _tracker(book, now)
    tracker.prepare_chart()
    article = _article(published)
    expected = render_symbol_chart(book, "NVDA", now, mark_at=published, tz=_NEW_YORK)
    assert tracker.chart_for(article) == expected
    # A new price: the next alert's chart shows it.
    book.add(PriceTick("NVDA", 110.0, now, "yahoo"))
    tracker.prepare_chart()
    fresh = render_symbol_chart(book, "NVDA", now, mark_at=published, tz=_NEW_YORK)
    assert fresh != expected and tracker.chart_for(article) == fresh


def _tracker(book: PriceBook, now: datetime) -> PriceTracker:
    config = PricesConfig(enabled=False, symbols=["NVDA"])  # no source: the book is fed here
    tracker = PriceTracker(config, None, FakeClock(now), {}, Metrics())  # type: ignore[arg-type]
    tracker.book = book
    return tracker


def _article(published: datetime) -> Article:
    return Article(feed="wire", item_id="1", title="Nvidia slides", published=published)
