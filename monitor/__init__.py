"""semis-monitor: a news-alert daemon for semiconductor stocks."""

__version__ = "0.1.0"
