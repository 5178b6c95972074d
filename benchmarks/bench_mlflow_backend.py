"""Logging to an MLflow tracking server: autotrack's MLflow backend vs `mlflow.xgboost.autolog()`,
both writing to the same local `mlflow server` (SQLite backend, local artifact folder).

    python benchmarks/bench_mlflow_backend.py [--repeat 5]

Workload (the issue's): `xgboost.train`, 500 rounds on breast_cancer with a validation
evaluation set, each tool with its defaults (params, per-iteration metrics, importances, model).
Rounds interleave plain / autotrack / MLflow after a warm-up round; medians are reported.

"added" is what the user's call costs over the plain call. autotrack's call returns before its
deferred work (model files, plots) and before its queued requests reach the server; the time
until everything is on the server is timed too ("until on server": `autotrack.flush()` after
the call). MLflow's autolog sends everything inside the call. The server's access log gives the
number of `log-batch` requests each tool made per training run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import write  # noqa: E402

from mlflow_server import MlflowServer  # noqa: E402

ROUNDS = 500


def workload() -> Callable[[], Any]:
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=0)

    def train() -> Any:
        dtrain = xgb.DMatrix(X_train, label=y_train)
        dvalid = xgb.DMatrix(X_valid, label=y_valid)
        params = {"objective": "binary:logistic", "eval_metric": "logloss"}
        return xgb.train(params, dtrain, ROUNDS, evals=[(dvalid, "valid")], verbose_eval=False)

    return train


def measure(fn: Callable[[], Any], mode: str) -> tuple[float, float]:
    """(seconds in the call, seconds from the call's return until everything is on the server)."""
    import mlflow

    import autotrack

    if mode == "autotrack":
        autotrack.xgboost.autolog()
    elif mode == "mlflow":
        mlflow.xgboost.autolog()
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    tail = time.perf_counter()
    if mode == "autotrack":
        autotrack.flush()
    after = time.perf_counter() - tail
    if mode == "autotrack":
        autotrack.xgboost.autolog(disable=True)
    elif mode == "mlflow":
        mlflow.xgboost.autolog(disable=True)
    return elapsed, after


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    import mlflow

    import autotrack

    fn = workload()
    modes = ("plain", "autotrack", "mlflow")
    calls: dict[str, list[float]] = {mode: [] for mode in modes}
    tails: list[float] = []
    requests: dict[str, list[int]] = {"autotrack": [], "mlflow": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUTOTRACK_SPILL_DIR"] = f"{tmp}/spill"
        server = MlflowServer(Path(tmp) / "server").start()
        try:
            autotrack.set_tracking_uri(f"mlflow+{server.uri}")
            autotrack.set_experiment("bench-autotrack")
            mlflow.set_tracking_uri(server.uri)
            mlflow.set_experiment("bench-mlflow")
            for round_index in range(args.repeat + 1):
                for mode in modes:
                    before = server.requests_to("runs/log-batch")
                    elapsed, tail = measure(fn, mode)
                    if round_index == 0:  # warm-up
                        continue
                    calls[mode].append(elapsed)
                    if mode == "autotrack":
                        tails.append(tail)
                    if mode != "plain":
                        requests[mode].append(server.requests_to("runs/log-batch") - before)
                print(f"round {round_index} done", flush=True)
        finally:
            server.kill()

    plain = statistics.median(calls["plain"])
    ours = statistics.median(calls["autotrack"]) - plain
    theirs = statistics.median(calls["mlflow"]) - plain
    row = {
        "workload": f"xgboost.train {ROUNDS} rounds + valid eval -> local mlflow server",
        "plain_s": plain,
        "autotrack_added_s": ours,
        "autotrack_until_on_server_s": ours + statistics.median(tails),
        "mlflow_added_s": theirs,
        "ratio": theirs / max(ours, 1e-3),
        "log_batch_requests_per_run": {m: statistics.median(v) for m, v in requests.items()},
        "samples_s": calls,
    }
    print(
        f"{row['workload']}\n  plain {plain * 1000:.1f} ms, autotrack +{ours * 1000:.1f} ms"
        f" (+{row['autotrack_until_on_server_s'] * 1000:.1f} ms until on the server),"
        f" mlflow.xgboost.autolog +{theirs * 1000:.1f} ms\n"
        f"  log-batch requests per run: {row['log_batch_requests_per_run']}"
    )
    write("mlflow_backend", [row], repeat=args.repeat)


if __name__ == "__main__":
    main()
