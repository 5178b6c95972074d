"""scikit-learn autologging overhead, side by side with `mlflow.sklearn.autolog()`.

    python benchmarks/bench_sklearn.py [--repeat 5]

Workloads (the issue's): LogisticRegression on breast_cancer, and GridSearchCV over 9
candidates of it (5 folds). Each runs plain, with `autotrack.sklearn.autolog()` and with
`mlflow.sklearn.autolog()` (if mlflow imports), all with their defaults: models, metrics,
plots and datasets on (MLflow's `max_tuning_runs=None` so both log all 9 child runs).

"added" is what the user's `fit` call costs over the plain fit (medians over rounds that
interleave the three modes, after a warm-up round). autotrack finishes metrics, plots, model
files and child runs on a background thread after `fit` returns; that work is drained,
untimed, after each call and reported separately ("deferred"), so one call's leftovers never
slow the next one down. MLflow does all of its work inside the call.
"""

from __future__ import annotations

import os

# BLAS pinned to one thread: on a shared machine OpenBLAS threads spin-wait for cores and the
# plain fit's own time (and its CPU time) would vary tenfold between repetitions.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from harness import mlflow_available, write  # noqa: E402


def workloads() -> dict[str, Callable[[], Any]]:
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # scaled, so the fit itself is short and stable
    grid = {"C": np.logspace(-3, 3, 9).tolist()}
    return {
        "sklearn LogisticRegression.fit (breast_cancer)": lambda: LogisticRegression(
            max_iter=1000
        ).fit(X, y),
        "sklearn GridSearchCV 9 candidates x 5 folds": lambda: GridSearchCV(
            LogisticRegression(max_iter=1000), grid, cv=5
        ).fit(X, y),
    }


def switch(mode: str, on: bool) -> None:
    """Turn one tool's sklearn autologging on or off (the other is always off)."""
    if mode == "autotrack":
        import autotrack

        autotrack.sklearn.autolog(disable=not on)
        if not on:
            autotrack.flush()
    elif mode == "mlflow":
        import mlflow

        if on:
            mlflow.sklearn.autolog(max_tuning_runs=None)
        else:
            mlflow.sklearn.autolog(disable=True)


def measure(fn: Callable[[], Any], mode: str) -> tuple[float, float, float]:
    """(wall seconds in the call, CPU seconds of the calling thread in it, seconds of
    autotrack's deferred work drained after it)."""
    switch(mode, True)
    cpu = time.thread_time()
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu
    tail = time.perf_counter()
    if mode == "autotrack":
        import autotrack

        autotrack.flush()
    deferred = time.perf_counter() - tail
    switch(mode, False)
    return elapsed, cpu, deferred


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15, help="rounds of plain and autotrack")
    parser.add_argument("--mlflow-repeat", type=int, default=5, help="MLflow takes seconds")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import tempfile

    import autotrack

    modes = ["plain", "autotrack"] + (["mlflow"] if mlflow_available() else [])
    if "mlflow" not in modes:
        print("mlflow not installed: autotrack only")
    jobs = workloads()
    samples: dict[str, dict[str, list[float]]] = {name: {m: [] for m in modes} for name in jobs}
    cpu: dict[str, dict[str, list[float]]] = {name: {m: [] for m in modes} for name in jobs}
    deferred: dict[str, list[float]] = {name: [] for name in jobs}
    with tempfile.TemporaryDirectory() as store:
        autotrack.set_tracking_uri(f"{store}/autotrack")
        if "mlflow" in modes:
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        # Rounds interleave the modes, so a change in machine load hits them all alike.
        for round_index in range(args.repeat + 1):
            for name, fn in jobs.items():
                for mode in modes:
                    if mode == "mlflow" and round_index > args.mlflow_repeat:
                        continue
                    elapsed, thread_cpu, tail = measure(fn, mode)
                    if round_index:  # round 0 is the warm-up
                        samples[name][mode].append(elapsed)
                        cpu[name][mode].append(thread_cpu)
                        if mode == "autotrack":
                            deferred[name].append(tail)
            print(f"round {round_index} done", flush=True)

    rows = []
    for name, by_mode in samples.items():
        median = {mode: statistics.median(values) for mode, values in by_mode.items()}
        best = {mode: min(values) for mode, values in by_mode.items()}
        cpu_median = {mode: statistics.median(values) for mode, values in cpu[name].items()}
        row: dict[str, Any] = {
            "workload": name,
            "plain_s": median["plain"],
            "autotrack_added_s": median["autotrack"] - median["plain"],
            "autotrack_added_min_s": best["autotrack"] - best["plain"],
            "autotrack_added_thread_cpu_s": cpu_median["autotrack"] - cpu_median["plain"],
            "autotrack_deferred_s": statistics.median(deferred[name]),
            "samples_s": by_mode,
            "thread_cpu_s": cpu[name],
        }
        if "mlflow" in median:
            row["mlflow_added_s"] = median["mlflow"] - median["plain"]
            row["mlflow_added_min_s"] = best["mlflow"] - best["plain"]
            row["mlflow_added_thread_cpu_s"] = cpu_median["mlflow"] - cpu_median["plain"]
            row["ratio"] = row["mlflow_added_s"] / max(row["autotrack_added_s"], 1e-3)
        rows.append(row)

    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:,.1f}"

    print("added to the fit call, ms: median wall / min wall / median CPU of the calling thread")
    for row in rows:
        print(f"{row['workload']}: plain {ms(row['plain_s'])} ms")
        print(
            f"  autotrack +{ms(row['autotrack_added_s'])} / +{ms(row['autotrack_added_min_s'])}"
            f" / +{ms(row['autotrack_added_thread_cpu_s'])}"
            f"   (deferred work after the call: {ms(row['autotrack_deferred_s'])})"
        )
        if "mlflow_added_s" in row:
            print(
                f"  mlflow    +{ms(row['mlflow_added_s'])} / +{ms(row['mlflow_added_min_s'])}"
                f" / +{ms(row['mlflow_added_thread_cpu_s'])}"
            )
    write("sklearn", rows, repeat=args.repeat, mlflow_repeat=args.mlflow_repeat)


if __name__ == "__main__":
    main()
