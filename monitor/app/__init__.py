"""Pipelines: they call the adapters and the core in the right order and decide nothing."""
