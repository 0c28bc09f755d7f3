"""Shared fixtures for the data tests: a private cache folder and small image writers."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache folder: nothing is written under the user's home."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(cache))
    return cache
