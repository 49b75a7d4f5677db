"""Store adapter: SQLite (default) and PostgreSQL (several instances)."""
