"""The `autotrack` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import autotrack


def run_cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autotrack.cli", "--store", store, *args],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def make_runs():
    ids = []
    for c, acc in ((0.1, 0.8), (1.0, 0.95)):
        with autotrack.start_run(run_name=f"logreg-{c}", tags={"estimator_name": "LogReg"}) as run:
            autotrack.log_param("C", c)
            for step in range(3):
                autotrack.log_metric("accuracy", acc - 0.1 * (2 - step), step=step)
            autotrack.log_text("hi", "notes/readme.txt")
            with autotrack.start_run(run_name=f"child-{c}", nested=True):
                pass
        ids.append(run.run_id)
    autotrack.flush()
    return ids


def test_runs_lists_runs_with_params_and_metrics(store_uri):
    make_runs()
    result = run_cli("runs", store=store_uri)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("logreg-0.1", "logreg-1.0", "child-1.0", "FINISHED", "accuracy", "0.95", "LogReg"):
        assert text in out
    # newest first, each child right under its parent (children start after their parent)
    assert out.index("logreg-1.0") < out.index("child-1.0") < out.index("logreg-0.1")
    assert out.index("logreg-0.1") < out.index("child-0.1")


def test_runs_filter_sort_and_limit(store_uri):
    make_runs()
    result = run_cli("runs", "--filter", "metrics.accuracy > 0.9", store=store_uri)
    assert "logreg-1.0" in result.stdout and "logreg-0.1" not in result.stdout
    result = run_cli("runs", "--sort", "metrics.accuracy ASC", "--limit", "1", store=store_uri)
    assert "logreg-0.1" in result.stdout and "logreg-1.0" not in result.stdout


def test_bad_filter_is_a_clear_error(store_uri):
    result = run_cli("runs", "--filter", "metrics.accuracy >> 1", store=store_uri)
    assert result.returncode == 2
    assert "autotrack:" in result.stderr and "Traceback" not in result.stderr


def test_show_prints_one_run_by_id_prefix(store_uri):
    run_id = make_runs()[1]
    result = run_cli("show", run_id[:10], store=store_uri)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert run_id in out and "logreg-1.0" in out
    assert "C" in out and "1.0" in out  # params
    assert "accuracy" in out and "0.95" in out and " 3" in out  # latest value and point count
    assert "notes/readme.txt" in out
    assert "child-1.0" in out


def test_show_unknown_run(store_uri):
    make_runs()
    result = run_cli("show", "ffffffff", store=store_uri)
    assert result.returncode == 2 and "0 runs start with" in result.stderr
