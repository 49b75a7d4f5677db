"""A small stand-in for the entity matcher: alias search with Korean-aware boundaries.

Stance tests use it to produce the `Hit`s the engine would pass to `assess`.
"""

from __future__ import annotations

import re

from monitor.core.models import Article, Hit

ALIASES: dict[str, tuple[str, ...]] = {
    "nvidia": ("엔비디아", "Nvidia", "NVDA"),
    "sk_hynix": ("SK하이닉스", "SK 하이닉스", "하이닉스", "SK hynix", "000660"),
    "samsung_electronics": ("삼성전자", "Samsung Electronics", "005930"),
    "tsmc": ("TSMC",),
    "meta": ("메타", "Meta"),
    "microsoft": ("마이크로소프트", "Microsoft"),
    "openai": ("오픈AI", "OpenAI"),
    "deepseek": ("딥시크", "DeepSeek"),
    "h100": ("H100",),
    "h800": ("H800",),
    "h20": ("H20",),
    "blackwell": ("블랙웰", "Blackwell", "GB200", "B200"),
}


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def find_hits(article: Article) -> list[Hit]:
    hits: list[Hit] = []
    for entity, aliases in ALIASES.items():
        for alias in aliases:
            for field, text in (("title", article.title), ("body", article.text)):
                for m in re.finditer(re.escape(alias), text):
                    s, e = m.span()
                    if alias[0].isascii() and s > 0 and _latin(text[s - 1]):
                        continue
                    if alias[-1].isascii() and e < len(text) and _latin(text[e]):
                        continue
                    hits.append(Hit(entity, alias, field, s, e))  # type: ignore[arg-type]
    return hits
