"""A small intraday price chart, rendered to PNG bytes in pure Python.

Owns the picture attached to alerts: the price line over the last hours
(green above the previous close, red below), the previous close as a dashed
line, the article's publish time as an amber marker, and a few numbers in a
built-in 3x5 pixel font. PNG is written by hand (zlib + struct) so that no
plotting library is needed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
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
    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def run(self, x: int, y: int, length: int, rgb: bytes) -> None:
        """A horizontal run of `length` pixels from (x, y), clipped; one slice write."""
        if not 0 <= y < self.height:
            return
        x0, x1 = max(0, x), min(self.width, x + length)
        if x1 > x0:
            i = (y * self.width + x0) * 3
            self.pixels[i : i + (x1 - x0) * 3] = rgb * (x1 - x0)

    def hline(self, x0: int, x1: int, y: int, color: Color, dash: int = 0) -> None:
        if not dash:
            self.run(x0, y, x1 - x0 + 1, bytes(color))
            return
        for x in range(max(0, x0), min(self.width, x1 + 1)):
            if not dash or (x // dash) % 2 == 0:
                self.set(x, y, color)

    def vline(self, x: int, y0: int, y1: int, color: Color, dash: int = 0) -> None:
        for y in range(max(0, y0), min(self.height, y1 + 1)):
            if not dash or (y // dash) % 2 == 0:
                self.set(x, y, color)

    def span(self, x: int, y0: int, y1: int, rgb: bytes) -> None:
        """Column x from y0 to y1 inclusive, clipped: one strided write per channel."""
        if not 0 <= x < self.width:
            return
        y0, y1 = max(0, y0), min(self.height - 1, y1)
        if y1 < y0:
            return
        stride = self.width * 3
        start = (y0 * self.width + x) * 3
        stop = (y1 * self.width + x) * 3 + 1
        count = y1 - y0 + 1
        for c in range(3):
            self.pixels[start + c : stop + c : stride] = bytes((rgb[c],)) * count

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thick: int = 2) -> None:
        """A `thick` pixel wide segment, drawn column by column: each column gets the
        span of rows the segment crosses within it (cheap for the steep moves of a
        price line, where a pixel-by-pixel walk would touch every row)."""
        if x1 < x0:
            x0, y0, x1, y1 = x1, y1, x0, y0
        rgb = bytes(color)
        if x0 == x1:
            for bx in range(thick):
                self.span(x0 + bx, min(y0, y1), max(y0, y1) + thick - 1, rgb)
            return
        slope = (y1 - y0) / (x1 - x0)
        for x in range(x0, x1 + 1):
            ya = y0 + slope * max(0.0, x - x0 - 0.5)
            yb = y0 + slope * min(float(x1 - x0), x - x0 + 0.5)
            lo, hi = round(min(ya, yb)), round(max(ya, yb))
            for bx in range(thick):
                self.span(x + bx, lo, hi + thick - 1, rgb)

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> None:
        for ch in text:
            glyph = _GLYPHS.get(ch, _GLYPHS[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    gx, gy = i % 3, i // 3
                    for sx in range(scale):
                        for sy in range(scale):
                            self.set(x + gx * scale + sx, y + gy * scale + sy, color)
            x += 4 * scale

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale - scale


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
    if width < 120 or height < 80:
        raise ValueError("chart must be at least 120x80 pixels")
    canvas = _Canvas(width, height, BACKGROUND)
    left, right, top, bottom = 6, width - 62, 8, height - 20
    pts = sorted(points, key=lambda p: p[0])
    prices = [p for _, p in pts]
    if previous_close is not None:
        prices.append(previous_close)
    if len(pts) < 2 or not prices:
        canvas.text(left + 4, top + 4, "--", TEXT)
        return canvas.png()
    lo, hi = min(prices), max(prices)
    pad = max((hi - lo) * 0.06, hi * 0.001)
    lo, hi = lo - pad, hi + pad
    t0, t1 = pts[0][0], pts[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)

    def x_of(t: datetime) -> int:
        return left + round((t - t0).total_seconds() / span * (right - left))

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
    if mark_at is not None and t0 <= mark_at <= t1:
        mx = x_of(mark_at)
        canvas.vline(mx, top, bottom, MARK)
        canvas.vline(mx + 1, top, bottom, MARK)
        for k in range(5):  # a small downward triangle at the top
            canvas.hline(mx - 4 + k, mx + 5 - k, top + k, MARK)
    prev = (x_of(pts[0][0]), y_of(pts[0][1]))
    for t, price in pts[1:]:
        cur = (x_of(t), y_of(price))
        canvas.line(prev[0], prev[1], cur[0], cur[1], color)
        prev = cur
    label = f"{last:.2f}"
    if previous_close:
        label += f" {(last - previous_close) / previous_close * 100:+.2f}%"
    # Top left, on a patch of background so that the lines never cross it.
    for y in range(top, top + 14):
        canvas.hline(left, left + text_width(label) + 7, y, BACKGROUND)
    canvas.text(left + 4, top + 2, label, color)
    return canvas.png()


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
    ticks = book.history(symbol, now - timedelta(hours=hours), now)
    if len(ticks) < 2:
        return None
    points = [(t.at, t.price) for t in ticks]
    return render_chart(points, book.previous_close(symbol), mark_at, width, height, tz=tz)
