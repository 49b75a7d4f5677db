"""Build hook: compile the engine's hot loops with Cython where a C compiler is at hand.

The matcher, the engine, rule evaluation and the stance analysis are compiled from
their own sources (`monitor/core/matcher.py`, `engine.py`, `firing.py`, `stance.py`).
Four typed kernels replace Python where they are built: `_stance_native.pyx`, used by
stance.py for the scan, clause analysis and weighing, `_sentences_native.pyx`, used by
sentences.py to split sentences, `_slots_native.pyx`, used by slots.py to build frozen
dataclass values, and `_matcher_native.pyx`, used by matcher.py to check the automaton's
matches; each module keeps its own Python as the reference and runs it otherwise. When a
build fails (no compiler, no Python headers, a Cython error) the package installs and runs
that module as pure Python. Set SEMIS_MONITOR_PURE=1 at install time to skip the
compilation on purpose. Either way, an extension left in the source tree by an earlier
editable install is removed first, so that Python never imports a stale one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [  # monitor/app/daemon.py's COMPILED_MODULES names the same modules
    "monitor/core/matcher.py",
    "monitor/core/engine.py",
    "monitor/core/firing.py",
    "monitor/core/stance.py",
    "monitor/core/_stance_native.pyx",
    "monitor/core/_sentences_native.pyx",
    "monitor/core/_slots_native.pyx",
    "monitor/core/_matcher_native.pyx",
]
HERE = Path(__file__).resolve().parent


def _remove_stale(generated_c: bool = True, sources: list[str] | None = None) -> None:
    for source in COMPILED if sources is None else sources:
        path = HERE / source
        for old in path.parent.glob(path.stem + ".*.so"):
            old.unlink()
        if generated_c:
            path.with_suffix(".c").unlink(missing_ok=True)


class BuildExt(build_ext):
    """build_ext that never leaves an older in-place extension behind a failed build."""

    def run(self) -> None:
        _remove_stale(generated_c=False)  # the C file is this build's own, made just now
        for ext in self.extensions:  # an earlier build's copy, which --inplace would restore
            Path(self.build_lib, self.get_ext_filename(ext.name)).unlink(missing_ok=True)
        super().run()


def extensions() -> list[Any]:
    if os.environ.get("SEMIS_MONITOR_PURE"):
        _remove_stale()
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as e:  # no Cython: pure Python
        print(f"warning: nothing compiled ({e})", file=sys.stderr)
        _remove_stale()
        return []
    exts: list[Any] = []
    for source in COMPILED:
        try:
            exts += cythonize(
                [source],
                language_level=3,
                # Annotations are documentation here, as in CPython: a compiled module
                # must accept exactly what its source accepts.
                compiler_directives={"binding": False, "annotation_typing": False},
                quiet=True,
            )
        except Exception as e:  # Cython cannot translate the source: pure Python
            print(f"warning: {source} not compiled ({type(e).__name__}: {e})", file=sys.stderr)
            _remove_stale(sources=[source])
    for ext in exts:
        ext.optional = True  # a failed C compile leaves the pure-Python module in place
        # Scores must not depend on the build: no fused multiply-add contraction.
        ext.extra_compile_args = [*getattr(ext, "extra_compile_args", []), "-ffp-contract=off"]
    return list(exts)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
