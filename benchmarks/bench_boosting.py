"""XGBoost and LightGBM autologging overhead, side by side with `mlflow.xgboost.autolog()` and
`mlflow.lightgbm.autolog()`.

    python benchmarks/bench_boosting.py [--repeat 5]

Workloads (the issue's): 500 boosting rounds on breast_cancer with a train and a validation
evaluation set, through each library's native `train` and its scikit-learn wrapper's `fit`.
Each runs plain, with autotrack's autolog and with MLflow's (if mlflow imports), all with
their defaults (models, metrics, importances, datasets on).

"added" is what the user's call costs over the plain call (medians over rounds that interleave
the three modes, after a warm-up round). autotrack writes plots, model files and dataset
hashes on a background thread after the call returns; that work is drained, untimed, after
each call and reported separately ("deferred"). MLflow does its work inside the call.

A second table times the per-iteration path alone: the injected callback fed 10,000
iterations of 3 metrics (as XGBoost and LightGBM hand them over), then written to the store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import mlflow_available, write

ROUNDS = 500


def workloads() -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (library, call)."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=0)
    quiet = {"verbose": -1}

    def xgb_train() -> Any:
        dtrain = xgb.DMatrix(X_train, label=y_train)
        dvalid = xgb.DMatrix(X_valid, label=y_valid)
        evals = [(dtrain, "train"), (dvalid, "valid")]
        params = {"objective": "binary:logistic", "eval_metric": "logloss"}
        return xgb.train(params, dtrain, ROUNDS, evals=evals, verbose_eval=False)

    def xgb_fit() -> Any:
        model = xgb.XGBClassifier(n_estimators=ROUNDS)
        eval_set = [(X_train, y_train), (X_valid, y_valid)]
        return model.fit(X_train, y_train, eval_set=eval_set, verbose=False)

    def lgb_train() -> Any:
        train_set = lgb.Dataset(X_train, label=y_train)
        valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
        params = {"objective": "binary", **quiet}
        return lgb.train(
            params,
            train_set,
            ROUNDS,
            valid_sets=[train_set, valid_set],
            valid_names=["train", "valid"],
        )

    def lgb_fit() -> Any:
        model = lgb.LGBMClassifier(n_estimators=ROUNDS, **quiet)
        return model.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)])

    return {
        f"xgboost.train {ROUNDS} rounds, train+valid evals": ("xgboost", xgb_train),
        f"XGBClassifier.fit {ROUNDS} rounds, train+valid": ("xgboost", xgb_fit),
        f"lightgbm.train {ROUNDS} rounds, train+valid": ("lightgbm", lgb_train),
        f"LGBMClassifier.fit {ROUNDS} rounds, train+valid": ("lightgbm", lgb_fit),
    }


def switch(mode: str, library: str, on: bool) -> None:
    """Turn one tool's autologging of `library` on or off (the other tool is always off)."""
    if mode == "autotrack":
        import autotrack

        getattr(autotrack, library).autolog(disable=not on)
        if not on:
            autotrack.flush()
    elif mode == "mlflow":
        import mlflow

        getattr(mlflow, library).autolog(disable=not on)


def measure(fn: Callable[[], Any], mode: str, library: str) -> tuple[float, float]:
    """(seconds in the call, seconds of autotrack's deferred work drained after it)."""
    switch(mode, library, True)
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    tail = time.perf_counter()
    if mode == "autotrack":
        import autotrack

        autotrack.flush()
    deferred = time.perf_counter() - tail
    switch(mode, library, False)
    return elapsed, deferred


def own_work(jobs: dict[str, tuple[str, Callable[[], Any]]], repeat: int) -> dict[str, float]:
    """Median seconds per call that autotrack's own code runs on the caller's thread (opening
    the run and `before`, the injected callback at every iteration, `after` and ending the
    run), timed from inside. Unlike wall-clock differences this does not drown in the noise
    of a busy machine; it leaves out slowdowns from contention with the background worker."""
    import xgboost as xgb

    import autotrack
    from autotrack import engine
    from autotrack.integrations import lightgbm as lgb_integration
    from autotrack.integrations import xgboost as xgb_integration

    spent = [0.0]

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        return wrapper

    xgb_callback = xgb_integration._callback_class(xgb.callback.TrainingCallback)
    patched = [
        (engine, "_prepare"),
        (engine, "_finish"),
        (xgb_callback, "after_iteration"),
        (xgb_callback, "after_training"),
        (lgb_integration.AutotrackCallback, "__call__"),
    ]
    originals = [getattr(owner, name) for owner, name in patched]
    for (owner, name), original in zip(patched, originals, strict=True):
        setattr(owner, name, timed(original))
    results = {}
    try:
        for name, (library, fn) in jobs.items():
            samples = []
            getattr(autotrack, library).autolog()
            for index in range(repeat + 1):
                spent[0] = 0.0
                fn()
                if index:
                    samples.append(spent[0])
                autotrack.flush()
            getattr(autotrack, library).autolog(disable=True)
            results[name] = statistics.median(samples)
    finally:
        for (owner, name), original in zip(patched, originals, strict=True):
            setattr(owner, name, original)
    return results


def stream_costs(iterations: int = 10_000) -> list[dict[str, Any]]:
    """Seconds to stream `iterations` x 3 metrics through each injected callback, on the
    training thread, and then to write them all to the store."""
    import xgboost as xgb

    import autotrack
    from autotrack.integrations import boosting
    from autotrack.integrations import lightgbm as lgb_integration
    from autotrack.integrations import xgboost as xgb_integration

    rows = []
    names = ("logloss", "auc", "error")
    with autotrack.start_run() as run:
        stream = boosting.MetricStream(run)
        callback = xgb_integration._callback_class(xgb.callback.TrainingCallback)(None, stream)
        log: OrderedDict[str, OrderedDict[str, list[float]]] = OrderedDict(
            valid=OrderedDict((name, []) for name in names)
        )
        started = time.perf_counter()
        for i in range(iterations):
            for name, values in log["valid"].items():
                values.append(0.5 / (i + 1) + len(name))  # XGBoost appends, then calls back
            callback.after_iteration(None, i, log)
        callback.after_training(None)
        in_training = time.perf_counter() - started
        autotrack.flush()
        rows.append(_stream_row("xgboost", iterations, in_training, time.perf_counter() - started))

        stream = boosting.MetricStream(run)
        callback = lgb_integration.AutotrackCallback(None, stream)  # type: ignore[arg-type]
        started = time.perf_counter()
        for i in range(iterations):
            results = [("valid_0", name, 0.5 / (i + 1), False) for name in names]
            callback(SimpleNamespace(iteration=i, evaluation_result_list=results))
        stream.flush()
        in_training = time.perf_counter() - started
        autotrack.flush()
        rows.append(_stream_row("lightgbm", iterations, in_training, time.perf_counter() - started))
    return rows


def _stream_row(library: str, iterations: int, in_training: float, total: float) -> dict:
    return {
        "workload": f"{library} callback, {iterations:,} iterations x 3 metrics",
        "training_thread_s": in_training,
        "written_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between calls")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import autotrack

    modes = ["plain", "autotrack"] + (["mlflow"] if mlflow_available() else [])
    if "mlflow" not in modes:
        print("mlflow not installed: autotrack only")
    jobs = workloads()
    samples = {name: {mode: [] for mode in modes} for name in jobs}
    deferred: dict[str, list[float]] = {name: [] for name in jobs}
    with tempfile.TemporaryDirectory() as store:
        autotrack.set_tracking_uri(f"{store}/autotrack")
        if "mlflow" in modes:
            import logging

            import mlflow

            logging.getLogger("mlflow").setLevel(logging.ERROR)
            mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        # Rounds interleave the modes, in an order that rotates each round, so a change in
        # machine load hits them all alike; after each call, a pause lets threads a tool left
        # running (MLflow's) finish before the next call is timed.
        for round_index in range(args.repeat + 1):
            order = modes[round_index % len(modes) :] + modes[: round_index % len(modes)]
            for name, (library, fn) in jobs.items():
                for mode in order:
                    elapsed, tail = measure(fn, mode, library)
                    if round_index:  # round 0 is the warm-up
                        samples[name][mode].append(elapsed)
                        if mode == "autotrack":
                            deferred[name].append(tail)
                    time.sleep(args.pause)
            print(f"round {round_index} done", flush=True)
        streams = stream_costs()
        own = own_work(jobs, args.repeat)

    rows = []
    for name, by_mode in samples.items():
        median = {mode: statistics.median(values) for mode, values in by_mode.items()}
        fastest = {mode: min(values) for mode, values in by_mode.items()}
        paired = {  # each round's call minus the same round's plain call: drift cancels out
            mode: statistics.median(a - b for a, b in zip(values, by_mode["plain"], strict=True))
            for mode, values in by_mode.items()
        }
        row: dict[str, Any] = {
            "workload": name,
            "plain_s": median["plain"],
            "autotrack_added_s": median["autotrack"] - median["plain"],
            "autotrack_added_paired_s": paired["autotrack"],
            "autotrack_added_min_s": fastest["autotrack"] - fastest["plain"],
            "autotrack_deferred_s": statistics.median(deferred[name]),
            "autotrack_own_work_s": own[name],
            "samples_s": by_mode,
        }
        if "mlflow" in median:
            row["mlflow_added_s"] = median["mlflow"] - median["plain"]
            row["mlflow_added_min_s"] = fastest["mlflow"] - fastest["plain"]
            row["mlflow_added_paired_s"] = paired["mlflow"]
            row["ratio"] = row["mlflow_added_s"] / max(row["autotrack_added_s"], 1e-3)
        rows.append(row)

    print("added over the plain call, ms: median vs median / median of per-round differences")
    print("/ fastest vs fastest")
    print(
        f"{'workload':44} {'plain':>9} {'+autotrack (ms)':>22} {'deferred':>9} {'+mlflow (s)':>17}"
    )
    for row in rows:
        ours = "/".join(
            f"{row[k] * 1000:.1f}"
            for k in ("autotrack_added_s", "autotrack_added_paired_s", "autotrack_added_min_s")
        )
        theirs = "-"
        if row.get("mlflow_added_s") is not None:
            theirs = "/".join(
                f"{row[k]:.2f}"
                for k in ("mlflow_added_s", "mlflow_added_paired_s", "mlflow_added_min_s")
            )
        print(
            f"{row['workload']:44} {row['plain_s'] * 1000:7.1f}ms {ours:>22} "
            f"{row['autotrack_deferred_s'] * 1000:7.1f}ms {theirs:>17}"
        )
    print("autotrack's own code on the caller's thread, timed from inside (median per call):")
    for row in rows:
        print(f"{row['workload']:44} {row['autotrack_own_work_s'] * 1000:7.1f}ms")
    for row in streams:
        print(
            f"{row['workload']:44} training thread {row['training_thread_s'] * 1000:6.1f}ms,"
            f" written {row['written_s'] * 1000:6.1f}ms"
        )
    write("boosting", rows, streams=streams, repeat=args.repeat, pause_s=args.pause)


if __name__ == "__main__":
    main()
