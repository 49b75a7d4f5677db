"""Build hook: compile the matcher's hot loop with Cython where a C compiler is at hand.

The compiled module is built from the same `monitor/core/*.py` source; when the build
fails (no compiler, no Python headers) the package installs and runs as pure Python.
Set SEMIS_MONITOR_PURE=1 to skip the compilation on purpose.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import setup

COMPILED = ["monitor/core/matcher.py"]


def extensions() -> list[Any]:
    if os.environ.get("SEMIS_MONITOR_PURE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    exts = cythonize(
        COMPILED,
        language_level=3,
        compiler_directives={"binding": False},
        quiet=True,
    )
    for ext in exts:
        ext.optional = True  # a failed compile leaves the pure-Python module in place
    return exts


setup(ext_modules=extensions())
