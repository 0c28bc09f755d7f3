"""The first Train in a fresh window holds the event loop no longer than the machine's own
noise plus 50 ms: torch's import (its libraries' dlopen, the garbage collections its ~10^6
objects trigger), the optimizer warm-up and the first batch all stay off the GUI thread.

Each attempt is a fresh process (torch not imported yet) running the stall benchmark's
`first-train` action: a shown window idles (the 16 ms timer's lateness then is the floor),
Train is pressed on digits-lenet, and the timer's worst lateness until the first epoch
ends is the stall. Before the fix it was 170–370 ms on every run; a loaded 2-core machine
adds random delays of its own, hence up to three attempts. And the GIL switch interval
that workers lower meanwhile comes back when the last of them ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gui_stalls.py"
ALLOWANCE_MS = 50.0  # over the floor: the goal (SPEC §3: no stall over 50 ms)
ATTEMPTS = 3


def first_train() -> dict:
    out = subprocess.run([sys.executable, str(BENCH), "--child", "first-train", "--files", "{}",
                          "--idle", "1.0"], capture_output=True, text=True, timeout=240)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the child failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return json.loads(lines[-1])


@pytest.mark.timeout(900)
def test_the_first_train_never_holds_the_window() -> None:
    seen = []
    for _ in range(ATTEMPTS):
        result = first_train()
        assert result["errors"] == []
        seen.append(result)
        if result["max"] <= result["floor"] + ALLOWANCE_MS:
            return
    pytest.fail("the first Train held the event loop: " + "; ".join(
        f"worst {r['max']:.0f} ms over a floor of {r['floor']:.0f} ms (late ticks, s after"
        f" the press: {r['late']})" for r in seen))


def test_fast_switching_holders_share_one_saved_interval() -> None:
    from cnnstudio.ui.torch_loading import FAST_SWITCH_S, fast_switching

    before = sys.getswitchinterval()
    first, second = fast_switching(), fast_switching()
    first.__enter__()
    second.__enter__()  # a run starts while torch loads for an inspection
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == min(before, FAST_SWITCH_S)  # the run still goes on
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
