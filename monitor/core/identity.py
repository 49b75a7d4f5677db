"""Stable identity of a feed item, and the hash that tells when it was updated.

An item is known by its guid, else its link, else a hash of its content: that
id stays the same when an outlet edits the headline. The content hash changes
when the title, summary, body or link change, which is how updates are seen.
"""

from __future__ import annotations

import hashlib

_ID_MAX = 512  # ids longer than this are hashed; some feeds put whole URLs with tracking


def _digest(*parts: str) -> str:
    joined = "\x1f".join(parts) + "\x1f"
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def item_identity(guid: str, link: str, title: str, summary: str) -> str:
    """The item's id within its feed: guid, else link, else "h:" + a content hash."""
    for candidate in (guid.strip(), link.strip()):
        if candidate:
            return candidate if len(candidate) <= _ID_MAX else "h:" + _digest(candidate)
    return "h:" + _digest(title, summary)


def content_hash(title: str, summary: str, body: str, link: str) -> str:
    """A short hex digest of what the item says; differs when the item is edited."""
    return _digest(title, summary, body, link)
