"""The pure core: domain values and the decisions made on them.

Nothing here performs I/O, reads the environment or the wall clock, or imports
another part of `monitor`. Time comes in as an argument or through a `Clock`.
"""
