"""Feed adapter: fetching (hardened HTTP) and parsing RSS/Atom into Articles."""
