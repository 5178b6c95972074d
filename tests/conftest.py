"""Every test gets its own store folder, strict mode (autotrack's own errors surface), and a
clean tracking state."""

from __future__ import annotations

import os

import pytest

os.environ["AUTOTRACK_STRICT"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def store_uri(tmp_path, monkeypatch):
    import autotrack
    from autotrack import tracking

    uri = str(tmp_path / "store")
    monkeypatch.setenv("AUTOTRACK_TRACKING_URI", uri)
    autotrack.set_tracking_uri(uri)
    yield uri
    while autotrack.active_run() is not None:
        autotrack.end_run()
    tracking._reset_for_tests()
