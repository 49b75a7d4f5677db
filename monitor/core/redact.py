"""Removes secrets from any text before it is logged, stored as an error or shown."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/api(?:/v\d+)?/webhooks/\d+/)[A-Za-z0-9_.\-]+"), r"\1<redacted>"),
    (
        re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_\-]+"),
        r"\1<redacted>",
    ),
    (
        re.compile(
            r"([?&](?:token|key|apikey|api_key|access_token|sig|signature)=)[^&\s\"']+", re.I
        ),
        r"\1<redacted>",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^@/\s]+@"), r"\1<redacted>@"),
)


def redact(text: str) -> str:
    """Return `text` with webhook tokens, API keys and URL passwords replaced."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
