"""Notifier adapter: Discord, Slack, console and generic webhook, behind a registry."""
