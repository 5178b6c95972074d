"""Side-by-side timing: the same workload plain, with autotrack and with MLflow's autolog,
in one process, with warm-up and repetitions; results as rows for `run_all.py`."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def median_seconds(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextlib.contextmanager
def autotrack_on(integration: str | None = None, **options: Any) -> Iterator[None]:
    """autotrack autologging into a fresh temporary store, switched off afterwards."""
    import autotrack

    with tempfile.TemporaryDirectory() as store:
        autotrack.set_tracking_uri(store)
        target = getattr(autotrack, integration) if integration else autotrack
        target.autolog(**options)
        try:
            yield
        finally:
            target.autolog(disable=True)
            autotrack.flush()


@contextlib.contextmanager
def mlflow_on(flavor: str | None = None, **options: Any) -> Iterator[None]:
    """MLflow's autolog into its default SQLite store in a temporary folder."""
    import mlflow

    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        target = getattr(mlflow, flavor) if flavor else mlflow
        target.autolog(**options)
        try:
            yield
        finally:
            target.autolog(disable=True)


def mlflow_available() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def compare(
    workload: str,
    fn: Callable[[], Any],
    autotrack_ctx: Callable[[], contextlib.AbstractContextManager[Any]],
    mlflow_ctx: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    repeat: int = 5,
    warmup: int = 1,
) -> dict[str, Any]:
    """Median time of `fn` plain, with autotrack, with MLflow; added times and their ratio."""
    plain = median_seconds(fn, repeat, warmup)
    with autotrack_ctx():
        ours = median_seconds(fn, repeat, warmup)
    row: dict[str, Any] = {
        "workload": workload,
        "plain_s": plain,
        "autotrack_added_s": max(ours - plain, 0.0),
        "mlflow_added_s": None,
        "ratio": None,
    }
    if mlflow_ctx is not None and mlflow_available():
        with mlflow_ctx():
            theirs = median_seconds(fn, repeat, warmup)
        row["mlflow_added_s"] = max(theirs - plain, 0.0)
        row["ratio"] = row["mlflow_added_s"] / max(row["autotrack_added_s"], 1e-4)
    print_rows([row])
    return row


def print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        theirs = row.get("mlflow_added_s")
        ratio = row.get("ratio")
        print(
            f"{row['workload']:44} plain {row['plain_s'] * 1000:9.1f} ms"
            f"  autotrack +{row['autotrack_added_s'] * 1000:8.1f} ms"
            + (f"  mlflow +{theirs * 1000:9.1f} ms  ratio {ratio:7.1f}x" if theirs else "")
        )


def write(name: str, rows: list[dict[str, Any]], **extra: Any) -> None:
    """Save rows as benchmarks/results/<name>.json with the versions and the machine."""
    import importlib.metadata as metadata

    versions = {}
    for package in ("autotrack", "mlflow", "scikit-learn", "xgboost", "xgboost-cpu", "lightgbm",
                    "tensorflow-cpu", "keras", "torch", "lightning"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "rows": rows,
        "versions": versions,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "load_average": os.getloadavg(),
        **extra,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
