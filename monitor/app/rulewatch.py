"""Hot reload of the rule directory.

`RuleWatcher` holds the current `RuleSet`. Its `watch` task waits for edits to
`*.toml` files under the rule directory (watchfiles), then loads and validates
the whole directory off the event loop. A good set replaces `current` in one
assignment, so an article is always analysed with one consistent set; a broken
edit keeps the last good set and logs every problem with its file and line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles import Change, awatch

from monitor.config import RulesConfig
from monitor.core.engine import RuleSet
from monitor.core.errors import RuleError
from monitor.core.rules import RuleFileErrors
from monitor.logs import get_logger
from monitor.rulefiles import load_ruleset

log = get_logger(__name__)

ReloadHook = Callable[[bool, str], None]  # (ok, summary or the error text)


def _is_rule_file(change: Change, path: str) -> bool:
    return path.endswith(".toml")


class RuleWatcher:
    """The current rule set plus a task that reloads it when its files change."""

    def __init__(
        self,
        directory: str | Path,
        config: RulesConfig | None = None,
        *,
        initial: RuleSet | None = None,
        notifiers: Iterable[str] | None = None,
        on_reload: ReloadHook | None = None,
        debounce_ms: int = 250,
        force_polling: bool | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.config = config or RulesConfig()
        self.notifiers = list(notifiers) if notifiers is not None else None
        self.on_reload = on_reload
        self.debounce_ms = debounce_ms
        self.force_polling = force_polling
        self.current: RuleSet = initial if initial is not None else self._load()
        self.last_error: RuleError | None = None
        self.generation = 0  # bumps on every successful swap

    def _load(self) -> RuleSet:
        return load_ruleset(self.directory, self.config, self.notifiers)

    def reload(self) -> bool:
        """Load the directory now; swap on success, keep the old set on error."""
        try:
            fresh = self._load()
        except RuleError as e:
            self._failed(e)
            return False
        self._swap(fresh)
        return True

    async def reload_async(self) -> bool:
        """`reload` with the parsing and compiling done in a worker thread."""
        try:
            fresh = await asyncio.to_thread(self._load)
        except RuleError as e:
            self._failed(e)
            return False
        self._swap(fresh)
        return True

    def _swap(self, fresh: RuleSet) -> None:
        self.current = fresh
        self.last_error = None
        self.generation += 1
        log.info("rules_reloaded", dir=str(self.directory), summary=fresh.summary())
        if self.on_reload:
            self.on_reload(True, fresh.summary())

    def _failed(self, e: RuleError) -> None:
        self.last_error = e
        problems = e.errors if isinstance(e, RuleFileErrors) else (e,)
        for p in problems:
            log.error(
                "rules_reload_failed",
                where=p.location().rstrip(": ") or str(self.directory),
                problem=p.message,
                kept=self.current.summary(),
            )
        if self.on_reload:
            self.on_reload(False, str(e))

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every batch of `*.toml` changes until `stop` is set."""
        log.info("rules_watching", dir=str(self.directory))
        async for changes in awatch(
            self.directory,
            watch_filter=_is_rule_file,
            debounce=self.debounce_ms,
            step=50,
            stop_event=stop,
            force_polling=self.force_polling,
            poll_delay_ms=200,
            recursive=True,
        ):
            log.debug("rules_changed", files=sorted({p for _, p in changes}))
            await self.reload_async()
