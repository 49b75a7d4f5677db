"""Console: alerts as readable text blocks on a stream, coloured on a terminal."""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO

import aiohttp

from monitor.config import NotifierConfig
from monitor.core import render
from monitor.core.models import Alert, StanceLabel
from monitor.ports import Delivery

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}{_RESET}" if colour else text


def format_alert(alert: Alert, colour: bool) -> str:
    """The alert as a block of lines, a rule above it; stance words in their colour."""
    lines = render.plain_text(alert).splitlines()
    stance = render.primary_stance(alert)
    label = stance.label if stance else StanceLabel.NEUTRAL
    rule = "─" * 72
    out = [_paint(rule, render.STANCE_ANSI[label], colour)]
    out.append(f"{_BOLD}{lines[0]}{_RESET}" if colour else lines[0])
    for line in lines[1:]:
        for s in alert.stance:
            prefix = render.stance_label(s)
            if line.startswith(prefix):
                line = _paint(prefix, render.STANCE_ANSI[s.label], colour) + line[len(prefix) :]
                break
        else:
            if colour and line.startswith(("http://", "https://")):
                line = f"{_DIM}{line}{_RESET}"
        out.append(line)
    return "\n".join(out)


class ConsoleNotifier:
    """Writes alerts to stdout (or a given stream)."""

    kind: ClassVar[str] = "console"
    max_per_window: ClassVar[int] = 100
    window_s: ClassVar[float] = 1.0
    can_edit: ClassVar[bool] = False

    def __init__(
        self,
        config: NotifierConfig,
        session: aiohttp.ClientSession | None = None,
        url: str | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.name = config.name
        self._stream = stream if stream is not None else sys.stdout
        isatty = getattr(self._stream, "isatty", None)
        self._colour = config.color if config.color is not None else bool(isatty and isatty())
        self._count = 0

    def __repr__(self) -> str:
        return f"ConsoleNotifier(name={self.name!r})"

    async def send(self, alert: Alert) -> Delivery:
        self._stream.write(format_alert(alert, self._colour) + "\n")
        self._stream.flush()
        self._count += 1
        return Delivery(message_ref=f"console:{self._count}")

    async def edit(self, message_ref: str, alert: Alert) -> Delivery:
        raise NotImplementedError("the console cannot edit what it printed")

    async def aclose(self) -> None:
        self._stream.flush()
