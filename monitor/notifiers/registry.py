"""Notifier kinds by name, and building a notifier from its configuration."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from monitor.config import NotifierConfig
from monitor.core.errors import ConfigError
from monitor.notifiers.console import ConsoleNotifier
from monitor.notifiers.discord import DiscordNotifier
from monitor.notifiers.slack import SlackNotifier
from monitor.notifiers.webhook import WebhookNotifier
from monitor.ports import Notifier

NOTIFIERS: dict[str, type[Notifier]] = {
    "discord": DiscordNotifier,
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
    "console": ConsoleNotifier,
}


def make_notifier(
    config: NotifierConfig,
    session: aiohttp.ClientSession,
    url: str | None,
    environ: Mapping[str, str] | None = None,
) -> Notifier:
    """A notifier of `config.kind` posting to `url` on `session`.

    `environ` supplies a webhook's signing secret (default: the process environment).
    ConfigError when the kind is unknown or the URL does not suit it (the error never
    repeats the URL).
    """
    cls = NOTIFIERS.get(config.kind)
    if cls is None:
        raise ConfigError(f"notifiers.{config.name}: unknown kind {config.kind!r}")
    if cls is WebhookNotifier:
        return WebhookNotifier(config, session, url, environ=environ)
    notifier: Notifier = cls(config, session, url)  # type: ignore[call-arg]
    return notifier
