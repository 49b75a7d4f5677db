"""Feed adapter: fetching (hardened HTTP) and parsing RSS/Atom into Articles.

ssrf     which addresses a feed URL or redirect may reach; the filtering resolver
http     make_session(fetch_config), Fetcher.fetch(url, etag, last_modified)
parse    parse_feed(body, headers, FeedContext) -> ParsedFeed (sync, CPU-bound)
isolate  parse_bounded(...): the same off the event loop, bounded in time
worker   the child process that parses bodies too big to parse in-process
"""
