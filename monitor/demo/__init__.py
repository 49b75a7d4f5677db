"""`monitor demo`: bundled sample feeds and a replayed price stream, served on 127.0.0.1."""
