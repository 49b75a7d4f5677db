"""`monitor run`: the daemon. SIGTERM / SIGINT stop it gracefully; SIGHUP reloads the config.

A reload re-reads and validates the config file; when it is valid the daemon
stops intake, drains, and starts again on the new config within the same
process. An invalid config on reload is reported and the running one is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from monitor.app.daemon import Daemon
from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.core.engine import RuleSet
from monitor.core.errors import ConfigError, MonitorError
from monitor.logs import get_logger
from monitor.rulefiles import resolve_rules_dir

log = get_logger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the daemon (embedded defaults without --config)")
    p.add_argument("--config", help="config file (default: embedded defaults)")
    p.add_argument("--rules", help="rules directory (overrides [rules] dir)")
    p.set_defaults(func=run)


class _Signals:
    """SIGTERM / SIGINT stop the daemon; SIGHUP stops it for a reload."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.reload = False

    def on_stop(self) -> None:
        self.reload = False  # a stop during a reload's drain is a stop
        self.stop.set()

    def on_hup(self) -> None:
        self.reload = True
        self.stop.set()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.on_stop)
        loop.add_signal_handler(signal.SIGINT, self.on_stop)
        loop.add_signal_handler(signal.SIGHUP, self.on_hup)


async def _serve(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    good: Config | None = None  # the config the daemon last ran on, once it ran
    rules: RuleSet | None = None
    loop = asyncio.get_running_loop()
    while True:
        signals = _Signals()
        signals.install(loop)
        rules_dir = resolve_rules_dir(cfg.rules.dir, args.config, args.rules)
        daemon = Daemon(cfg, rules_dir=rules_dir, clock=SystemClock(), fallback_rules=rules)
        try:
            await daemon.run(signals.stop)
        except ConfigError as e:
            if good is None:
                raise  # the first start fails loudly
            # A reload that cannot start (an unreadable url_file, say): back to what ran.
            log.error("config_reload_failed", error=str(e), kept="previous config")
            cfg, good = good, None
            continue
        good, rules = cfg, daemon.current_rules() or rules
        if not signals.reload:
            return 0
        try:
            cfg = load_config(args.config)
            log.info("config_reloaded", path=args.config or "(defaults)")
        except ConfigError as e:
            log.error("config_reload_failed", error=str(e), kept="previous config")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except MonitorError as e:
        print(f"monitor run: {e}", file=sys.stderr)
        return 1
