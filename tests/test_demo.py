"""`monitor demo` runs the whole pipeline offline and shows the 2025-01-27 story."""

from __future__ import annotations

import subprocess
import sys
import time


def test_demo_shows_the_deepseek_selloff_and_the_debate() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "demo"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert took < 60
    blocks = [b for b in proc.stdout.split("─" * 72) if b.strip()]

    selloff = ("plunge", "급락")
    deepseek = [b for b in blocks if any(w in b.splitlines()[1] for w in selloff)]
    assert len(deepseek) == 2, proc.stdout  # the Korean story (two sources) and the English one
    for block in deepseek:
        assert "nvidia: bearish" in block
        assert "NVDA $118.42 (-16.97% vs prev close)" in block

    debate = [b for b in blocks if "값비싼 엔비디아 AI칩 필요한가?" in b]
    assert len(debate) == 1
    assert "nvidia: mixed" in debate[0]

    capex = [b for b in blocks if "will not cut AI capex" in b]
    assert capex and "nvidia: bullish" in capex[0]

    moves = [b for b in blocks if b.strip().startswith("NVDA -")]
    assert moves, "the replayed session's drop should raise a move alert"
    # Progress goes to stderr while it runs, and a closing count.
    assert "[demo" in proc.stderr and "alert(s) delivered" in proc.stderr
