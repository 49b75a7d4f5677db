"""A small intraday price chart, rendered to PNG bytes in pure Python.

Owns the picture attached to alerts: the price line over the last hours
(green above the previous close, red below), the previous close as a dashed
line, the article's publish time as an amber marker, and a few numbers in a
built-in 3x5 pixel font. PNG is written by hand (zlib + struct) so that no
plotting library is needed; it is an indexed-colour PNG, a third of the bytes of
RGB to fill and compress.

The picture (`chart_base`) is drawn apart from the marker (`finish_chart`): the
daemon draws it ahead of time, and an alert, on its way out, only adds its
publish-time marker and encodes the PNG.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from monitor.core.pricebook import PriceBook

Color = tuple[int, int, int]

BACKGROUND: Color = (30, 31, 34)
GRID: Color = (52, 54, 60)
TEXT: Color = (190, 192, 198)
CLOSE_LINE: Color = (140, 142, 150)
UP: Color = (38, 194, 129)
DOWN: Color = (237, 66, 69)
MARK: Color = (255, 184, 0)

# 3x5 glyphs, one string of 15 bits per character, row by row.
_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    "-": "000000111000000",
    "+": "000010111010000",
    ":": "000010000010000",
    "%": "101001010100101",
    " ": "000000000000000",
}


class _Canvas:
    """An indexed-colour canvas: one palette byte per pixel, written out as a
    palette PNG. A third of the bytes of RGB to fill and to compress, and every
    span is one slice write."""

    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width, self.height = width, height
        self.palette: list[Color] = [background]
        self._index: dict[Color, int] = {background: 0}
        self.pixels = bytearray(width * height)

    def ink(self, color: Color) -> int:
        """The palette index of `color`, added on first use."""
        index = self._index.get(color)
        if index is None:
            if len(self.palette) == 256:
                raise ValueError("a chart uses at most 256 colours")
            index = self._index[color] = len(self.palette)
            self.palette.append(color)
        return index

    def rgb(self, x: int, y: int) -> Color:
        return self.palette[self.pixels[y * self.width + x]]

    def run(self, x: int, y: int, length: int, color: Color) -> None:
        """A horizontal run of `length` pixels from (x, y), clipped; one slice write."""
        if not 0 <= y < self.height:
            return
        x0, x1 = max(0, x), min(self.width, x + length)
        if x1 > x0:
            i = y * self.width
            self.pixels[i + x0 : i + x1] = bytes((self.ink(color),)) * (x1 - x0)

    def hline(self, x0: int, x1: int, y: int, color: Color, dash: int = 0) -> None:
        if not dash:
            self.run(x0, y, x1 - x0 + 1, color)
            return
        start = x0 - x0 % (2 * dash)  # dashes sit on a grid of the absolute x
        for x in range(start, x1 + 1, 2 * dash):
            lo = max(x, x0)
            self.run(lo, y, min(x + dash, x1 + 1) - lo, color)

    def vline(self, x: int, y0: int, y1: int, color: Color, dash: int = 0) -> None:
        if not dash:
            self.span(x, y0, y1, color)
            return
        start = y0 - y0 % (2 * dash)
        for y in range(start, y1 + 1, 2 * dash):
            self.span(x, max(y, y0), min(y + dash - 1, y1), color)

    def span(self, x: int, y0: int, y1: int, color: Color) -> None:
        """Column x from y0 to y1 inclusive, clipped: one strided slice write."""
        if not 0 <= x < self.width:
            return
        y0, y1 = max(0, y0), min(self.height - 1, y1)
        if y1 < y0:
            return
        w = self.width
        self.pixels[y0 * w + x : y1 * w + x + 1 : w] = bytes((self.ink(color),)) * (y1 - y0 + 1)

    def polyline(self, points: Sequence[tuple[int, int]], color: Color, thick: int = 2) -> None:
        """Segments through `points` (x ascending), `thick` pixels wide."""
        self.paint(self.line_columns(points, thick), color)

    def line_columns(
        self, points: Sequence[tuple[int, int]], thick: int = 2
    ) -> list[tuple[int, int, int]]:
        """The pixels of a polyline through `points` (x ascending), `thick` pixels wide,
        as (column, top row, bottom row) runs clipped to the canvas (see `paint`).

        Column x of the line covers the rows it crosses within half a pixel either
        side of x: from its height at x - 0.5 to its height at x + 0.5, and through
        any point at x itself. Being `thick` wide, pixel column c shows the columns
        c - thick + 1 .. c of the line; those overlap (the line is continuous), so
        each pixel column is one run (a pixel-by-pixel walk would touch every row of
        a steep price move).
        """
        if not points:
            return []
        first = points[0][0]
        half: list[float] = []  # half[k]: the line's height at first + k + 0.5
        x0, y0 = points[0]
        for x1, y1 in points[1:]:
            if x1 < x0:
                raise ValueError("polyline points must not go back in x")
            if x1 > x0:
                slope = (y1 - y0) / (x1 - x0)
                half += [y0 + slope * (k + 0.5) for k in range(x1 - x0)]
            x0, y0 = x1, y1
        # Per line column: the least and greatest y it covers (y grows downwards).
        if half:
            tops, bottoms = _pairwise(half, half[0], half[-1])
        else:
            tops, bottoms = [float(points[0][1])], [float(points[0][1])]
        for x, y in points:  # the points themselves (several may share a column)
            k = x - first
            tops[k], bottoms[k] = min(tops[k], y), max(bottoms[k], y)
        # Per pixel column: what the `thick` line columns ending there cover.
        for _ in range(thick - 1):
            tops = _pairwise(tops, tops[0], tops[-1])[0]
            bottoms = _pairwise(bottoms, bottoms[0], bottoms[-1])[1]
        w, h = self.width, self.height
        runs = []
        for k, (t, b) in enumerate(zip(tops, bottoms, strict=True)):
            c = first + k
            top, bottom = max(0, round(t)), min(h - 1, round(b) + thick - 1)
            if 0 <= c < w and bottom >= top:
                runs.append((c, top, bottom))
        return runs

    def paint(self, runs: Sequence[tuple[int, int, int]], color: Color) -> None:
        """Fill (column, top row, bottom row) runs, as `line_columns` gives them."""
        w = self.width
        ink = bytes((self.ink(color),))
        pixels = self.pixels
        for c, top, bottom in runs:
            pixels[top * w + c : bottom * w + c + 1 : w] = ink * (bottom - top + 1)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thick: int = 2) -> None:
        """One `thick` pixel wide segment."""
        if x1 < x0:
            x0, y0, x1, y1 = x1, y1, x0, y0
        self.polyline([(x0, y0), (x1, y1)], color, thick)

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> None:
        w, h = self.width, self.height
        pixels, ink = self.pixels, bytes((self.ink(color),))
        inside = y >= 0 and y + 5 * scale <= h  # every row of the text is on the canvas
        for ch in text:
            for gx, gy, length in _glyph_runs(ch):
                x0, x1 = max(0, x + gx * scale), min(w, x + (gx + length) * scale)
                if x1 <= x0:
                    continue
                run = ink * (x1 - x0)
                for row in range(y + gy * scale, y + (gy + 1) * scale):
                    if inside or 0 <= row < h:
                        pixels[row * w + x0 : row * w + x1] = run
            x += 4 * scale

    def png(self) -> bytes:
        w = self.width
        pixels = bytes(self.pixels)
        # Filter type 0 (none) before every row.
        raw = b"".join(b"\x00" + pixels[y * w : (y + 1) * w] for y in range(self.height))
        header = struct.pack(">IIBBBBB", w, self.height, 8, 3, 0, 0, 0)
        plte = b"".join(bytes(c) for c in self.palette)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"PLTE", plte)
            # Level 3: a third of the time of the default 6 for a file 1.5 KB larger.
            + _chunk(b"IDAT", zlib.compress(raw, 3))
            + _chunk(b"IEND", b"")
        )


def _pairwise(values: list[float], before: float, after: float) -> tuple[list[float], list[float]]:
    """Minima and maxima of neighbours: element k of each is taken over values k - 1
    and k, with `before` ahead of the first value and `after` behind the last (so
    one element more than `values`). Comprehensions, not min() / max() calls: this
    runs per pixel column of every chart."""
    lead, trail = [before, *values], [*values, after]
    pairs = list(zip(lead, trail, strict=True))
    return [a if a < b else b for a, b in pairs], [a if a > b else b for a, b in pairs]


@functools.cache
def _glyph_runs(ch: str) -> tuple[tuple[int, int, int], ...]:
    """(x, y, length) of each horizontal run of lit cells in a 3x5 glyph."""
    bits = _GLYPHS.get(ch, _GLYPHS[" "])
    runs: list[tuple[int, int, int]] = []
    for gy in range(5):
        row = bits[gy * 3 : gy * 3 + 3]
        gx = 0
        while gx < 3:
            if row[gx] == "1":
                end = gx
                while end < 3 and row[end] == "1":
                    end += 1
                runs.append((gx, gy, end - gx))
                gx = end
            else:
                gx += 1
    return tuple(runs)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale - scale


@dataclasses.dataclass(frozen=True, slots=True)
class ChartBase:
    """A chart without its publish-time marker, ready to take one: the picture is
    drawn once (per minute, say) and each article only adds its marker. `over` is
    1 where a layer drawn above the marker lies (the price line, the top-left
    label), so that the marker stays beneath them as if drawn in order."""

    width: int
    height: int
    palette: tuple[Color, ...]
    pixels: bytes
    over: bytes
    t0: datetime | None = None  # the time range, None for an empty frame
    t1: datetime | None = None
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    def x_of(self, t: datetime) -> int:
        return self.xs((t,))[0]

    def xs(self, times: Iterable[datetime]) -> list[int]:
        """The pixel columns of `times` (one call for the hundreds of a price line)."""
        t0, t1, left = self.t0, self.t1, self.left
        assert t0 is not None and t1 is not None
        span, width = max((t1 - t0).total_seconds(), 1.0), self.right - left
        return [left + round((t - t0).total_seconds() / span * width) for t in times]


def render_chart(
    points: Sequence[tuple[datetime, float]],
    previous_close: float | None,
    mark_at: datetime | None,
    width: int = 640,
    height: int = 320,
    *,
    tz: tzinfo = UTC,
) -> bytes:
    """A PNG of `points` (time, price), oldest first.

    The previous close is a dashed line (and widens the price range so it is
    always on the chart); `mark_at` (e.g. an article's publish time) is an
    amber vertical line when it falls inside the time range. Times on the axis
    are shown in `tz`. Fewer than two points give an empty, labelled frame.
    """
    return finish_chart(chart_base(points, previous_close, width, height, tz=tz), mark_at)


def finish_chart(base: ChartBase, mark_at: datetime | None) -> bytes:
    """The PNG of `base` with the amber marker at `mark_at`, if inside its time range."""
    canvas = _Canvas(base.width, base.height, BACKGROUND)
    canvas.palette, canvas.pixels = list(base.palette), bytearray(base.pixels)
    t0, t1 = base.t0, base.t1
    if mark_at is not None and t0 is not None and t1 is not None and t0 <= mark_at <= t1:
        ink = base.palette.index(MARK)
        pixels, over = canvas.pixels, base.over
        for i in _marker_cells(base, base.x_of(mark_at)):
            if not over[i]:
                pixels[i] = ink
    return canvas.png()


def _marker_cells(base: ChartBase, mx: int) -> list[int]:
    """Pixel indexes of the marker at column `mx`: two full-height columns and a small
    downward triangle at the top, clipped to the canvas."""
    w, h = base.width, base.height
    cells: list[int] = []
    for x in (mx, mx + 1):
        if 0 <= x < w:
            cells += range(max(0, base.top) * w + x, min(h - 1, base.bottom) * w + x + 1, w)
    for k in range(5):
        y = base.top + k
        if 0 <= y < h:
            cells += range(y * w + max(0, mx - 4 + k), y * w + min(w, mx + 6 - k))
    return cells


def chart_base(
    points: Sequence[tuple[datetime, float]],
    previous_close: float | None,
    width: int = 640,
    height: int = 320,
    *,
    tz: tzinfo = UTC,
) -> ChartBase:
    """Everything of `render_chart` but the marker (see `finish_chart`)."""
    if width < 120 or height < 80:
        raise ValueError("chart must be at least 120x80 pixels")
    canvas = _Canvas(width, height, BACKGROUND)
    canvas.ink(MARK)  # the marker's colour has its index whether or not it is drawn
    above = _Canvas(width, height, BACKGROUND)  # what lies above the marker
    left, right, top, bottom = 6, width - 62, 8, height - 20
    pts = sorted(points, key=lambda p: p[0])
    prices = [p for _, p in pts]
    if previous_close is not None:
        prices.append(previous_close)
    if len(pts) < 2 or not prices:
        canvas.text(left + 4, top + 4, "--", TEXT)
        return ChartBase(width, height, tuple(canvas.palette), bytes(canvas.pixels), b"")
    lo, hi = min(prices), max(prices)
    pad = max((hi - lo) * 0.06, hi * 0.001)
    lo, hi = lo - pad, hi + pad
    t0, t1 = pts[0][0], pts[-1][0]
    base = ChartBase(width, height, (), b"", b"", t0, t1, left, right, top, bottom)
    x_of = base.x_of  # the layers are added to `base` at the end

    def y_of(price: float) -> int:
        return bottom - round((price - lo) / (hi - lo) * (bottom - top))

    for i in range(5):  # horizontal grid and price labels
        price = lo + (hi - lo) * i / 4
        y = y_of(price)
        canvas.hline(left, right, y, GRID)
        canvas.text(right + 6, y - 5, f"{price:.2f}", TEXT)
    _time_axis(canvas, t0, t1, x_of, bottom, tz)
    last = pts[-1][1]
    color = UP if previous_close is None or last >= previous_close else DOWN
    if previous_close is not None:
        canvas.hline(left, right, y_of(previous_close), CLOSE_LINE, dash=4)
    # From here on every layer lies above the marker: drawn on both canvases.
    line = [(x, y_of(price)) for x, (_, price) in zip(base.xs(t for t, _ in pts), pts, strict=True)]
    label = f"{last:.2f}"
    if previous_close:
        label += f" {(last - previous_close) / previous_close * 100:+.2f}%"
    runs = canvas.line_columns(line)  # the same pixels on both canvases: found once
    for layer, ink, patch in ((canvas, color, BACKGROUND), (above, MARK, MARK)):
        layer.paint(runs, ink)
        # Top left, on a patch of background so that the lines never cross it.
        for y in range(top, top + 14):
            layer.hline(left, left + text_width(label) + 7, y, patch)
        layer.text(left + 4, top + 2, label, ink)
    return dataclasses.replace(
        base, palette=tuple(canvas.palette), pixels=bytes(canvas.pixels), over=bytes(above.pixels)
    )


def _time_axis(
    canvas: _Canvas,
    t0: datetime,
    t1: datetime,
    x_of: Callable[[datetime], int],
    bottom: int,
    tz: tzinfo,
) -> None:
    """Hour ticks (every 30 minutes on short charts) with HH:MM labels."""
    span_h = (t1 - t0).total_seconds() / 3600
    step = timedelta(minutes=30 if span_h <= 3 else 60 if span_h <= 8 else 180)
    local = t0.astimezone(tz)
    first = local.replace(minute=0, second=0, microsecond=0)
    mark = first
    last_label_end = -1
    while mark <= t1:
        if mark >= t0:
            x = x_of(mark)
            canvas.vline(x, bottom, bottom + 3, TEXT)
            label = mark.astimezone(tz).strftime("%H:%M")
            lx = x - text_width(label) // 2
            if lx > last_label_end + 6 and lx + text_width(label) < canvas.width:
                canvas.text(lx, bottom + 6, label, TEXT)
                last_label_end = lx + text_width(label)
        mark += step


def render_symbol_chart(
    book: PriceBook,
    symbol: str,
    now: datetime,
    *,
    hours: float = 6.5,
    mark_at: datetime | None = None,
    width: int = 640,
    height: int = 320,
    tz: tzinfo = UTC,
) -> bytes | None:
    """The chart of `symbol`'s last `hours` from the book; None with fewer than two prices."""
    base = symbol_chart_base(book, symbol, now, hours=hours, width=width, height=height, tz=tz)
    return None if base is None else finish_chart(base, mark_at)


def symbol_chart_base(
    book: PriceBook,
    symbol: str,
    now: datetime,
    *,
    hours: float = 6.5,
    width: int = 640,
    height: int = 320,
    tz: tzinfo = UTC,
) -> ChartBase | None:
    """`render_symbol_chart` without the marker (see `finish_chart`)."""
    ticks = book.history(symbol, now - timedelta(hours=hours), now)
    if len(ticks) < 2:
        return None
    points = [(t.at, t.price) for t in ticks]
    return chart_base(points, book.previous_close(symbol), width, height, tz=tz)
