"""Child process that parses one large feed body: pickle in on stdin, pickle out on stdout.

It caps its own address space first, so a parse that runs away in memory ends
in MemoryError here instead of in the daemon.
"""

from __future__ import annotations

import pickle
import resource
import sys

from monitor.core.errors import FeedParseError
from monitor.feeds.parse import parse_feed

MEMORY_LIMIT = 1024 * 1024 * 1024


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    body, headers, ctx = pickle.load(sys.stdin.buffer)
    result: tuple[str, object]
    try:
        result = ("ok", parse_feed(body, headers, ctx))
    except FeedParseError as e:
        result = ("error", str(e))
    except MemoryError:
        result = ("error", "parsing needed more memory than allowed")
    except (ValueError, TypeError, LookupError, RecursionError) as e:
        result = ("error", f"unparseable feed: {type(e).__name__}: {e}")
    pickle.dump(result, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
