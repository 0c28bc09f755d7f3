"""Test-wide set-up: no screen is needed, and runs are deterministic."""

import os

# Without a screen Qt aborts with a misleading xcb message unless told to draw offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One intra-op thread: on 2-core machines torch's default of 2 made timings erratic.
os.environ.setdefault("OMP_NUM_THREADS", "1")
