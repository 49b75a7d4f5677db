"""Price adapter: Yahoo chart polling and the Finnhub websocket."""
