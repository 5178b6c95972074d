"""Store throughput: single `log_metric` calls and batches of 1,000, autotrack's embedded store
side by side with MLflow's SQLite store (when mlflow is installed), in one process.

    python benchmarks/bench_store.py [--points 100000]

Points/s are measured on the caller's thread and again including the final flush to disk.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def autotrack_single(root: str, points: int) -> dict[str, float]:
    import autotrack

    autotrack.set_tracking_uri(root)
    with autotrack.start_run() as run:
        started = time.perf_counter()
        for step in range(points):
            autotrack.log_metric("loss", 1.0 / (step + 1), step=step)
        caller = time.perf_counter() - started
        autotrack.flush()
        total = time.perf_counter() - started
    assert len(autotrack.get_metric_history(run.run_id, "loss")) == points
    return {"caller_pts_per_s": points / caller, "flushed_pts_per_s": points / total}


def autotrack_batches(root: str, points: int) -> dict[str, float]:
    import autotrack

    autotrack.set_tracking_uri(root)
    keys = [f"m{i}" for i in range(1000)]
    with autotrack.start_run() as run:
        started = time.perf_counter()
        for step in range(points // 1000):
            autotrack.log_metrics(dict.fromkeys(keys, 0.5), step=step)
        caller = time.perf_counter() - started
        autotrack.flush()
        total = time.perf_counter() - started
    assert len(autotrack.get_metric_history(run.run_id, "m7")) == points // 1000
    return {"caller_pts_per_s": points / caller, "flushed_pts_per_s": points / total}


def autotrack_memory(root: str, points: int) -> float:
    """Peak traced memory (MB) while logging far more points than the buffer holds."""
    import autotrack

    autotrack.set_tracking_uri(root)
    tracemalloc.start()
    with autotrack.start_run():
        for step in range(points):
            autotrack.log_metric("loss", 0.5, step=step)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def mlflow_single(root: str, points: int) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    with mlflow.start_run():
        started = time.perf_counter()
        for step in range(points):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        total = time.perf_counter() - started
    return {"caller_pts_per_s": points / total, "flushed_pts_per_s": points / total}


def mlflow_batches(root: str, points: int) -> dict[str, float]:
    import mlflow
    from mlflow.entities import Metric

    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        started = time.perf_counter()
        for step in range(points // 1000):
            now = int(time.time() * 1000)
            batch = [Metric(f"m{i}", 0.5, now, step) for i in range(1000)]
            client.log_batch(run.info.run_id, metrics=batch)
        total = time.perf_counter() - started
    return {"caller_pts_per_s": points / total, "flushed_pts_per_s": points / total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--mlflow-points", type=int, default=1_000, help="MLflow is slow")
    args = parser.parse_args()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["autotrack log_metric"] = autotrack_single(f"{tmp}/a1", args.points)
        rows["autotrack log_metrics x1000"] = autotrack_batches(f"{tmp}/a2", args.points)
        memory_mb = autotrack_memory(f"{tmp}/a3", 1_000_000)
        try:
            import mlflow  # noqa: F401
        except ImportError:
            print("mlflow not installed: autotrack only (run `nox -s bench` for the comparison)")
        else:
            rows["mlflow log_metric"] = mlflow_single(f"{tmp}/m1", args.mlflow_points)
            rows["mlflow log_batch x1000"] = mlflow_batches(f"{tmp}/m2", args.mlflow_points * 10)
    print(f"{'workload':32} {'caller pts/s':>14} {'with flush pts/s':>17}")
    for name, row in rows.items():
        print(f"{name:32} {row['caller_pts_per_s']:14,.0f} {row['flushed_pts_per_s']:17,.0f}")
    print(f"peak memory logging 1,000,000 points: {memory_mb:.1f} MB (buffer bounded)")
    for ours, theirs in (
        ("autotrack log_metric", "mlflow log_metric"),
        ("autotrack log_metrics x1000", "mlflow log_batch x1000"),
    ):
        if theirs in rows:
            ratio = rows[ours]["flushed_pts_per_s"] / rows[theirs]["flushed_pts_per_s"]
            print(f"{ours} / {theirs}: {ratio:,.0f}x faster")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store.json").write_text(
        json.dumps(
            {"rows": rows, "peak_memory_mb_1m_points": memory_mb, "machine": platform.platform()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
