"""A dispatcher in a process of its own, for the kill -9 test.

    python -m tests.fakes.dispatch_worker DB_PATH DISCORD_URL

Delivers the outbox of the SQLite file at DB_PATH to the Discord webhook URL
until it is killed. Leases are short (1 s) so that a restart picks up what a
killed worker held, and the Discord pace is lifted so the test stays fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import ClassVar

import aiohttp

from monitor.app.dispatch import Dispatcher, DispatchSettings
from monitor.clock import SystemClock
from monitor.config import NotifierConfig
from monitor.core.routing import Destination
from monitor.logs import setup_logging
from monitor.notifiers.discord import DiscordNotifier
from monitor.store import open_store


class UnpacedDiscord(DiscordNotifier):
    max_per_window: ClassVar[int] = 10_000
    window_s: ClassVar[float] = 1.0


async def main(db: str, url: str) -> None:
    owner = f"worker-{os.getpid()}"
    store = open_store(f"sqlite:///{db}", instance_id=owner)
    await store.open()
    async with aiohttp.ClientSession() as session:
        desk = UnpacedDiscord(
            NotifierConfig(name="desk", kind="discord", url_env="D"), session, url
        )
        dispatcher = Dispatcher(
            store,
            {"desk": desk},
            SystemClock(),
            owner,
            destinations={"desk": Destination("desk", digest_threshold=100_000)},
            settings=DispatchSettings(lease_s=1.0, batch=5, idle_s=0.02),
        )
        print("ready", flush=True)
        await dispatcher.run(asyncio.Event())


if __name__ == "__main__":
    setup_logging("text", "DEBUG")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
