"""Keras: a small MLP, 20 epochs on synthetic data, plain / autotrack / MLflow's
`mlflow.tensorflow.autolog()`, in one process.

    python benchmarks/bench_keras.py [--repeat 7] [--epochs 20]

The variants are interleaved (one fit of each per round) so that the load of a shared machine
hits them alike; medians over the rounds. Each fit builds a new model, as a user's script does.
Both tools write to a store created before timing starts. A second pass times autotrack's own
code on the training thread (run start/end, hooks, the injected callback) directly, since a
few milliseconds are below the noise of a whole fit on a busy machine: autotrack's added time
is the end-to-end paired median, but never less than that direct measurement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from harness import mlflow_available, print_rows, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SAMPLES, FEATURES, BATCH = 1000, 20, 100


def make_data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = (X[:, :5].sum(axis=1) + 0.1 * rng.normal(size=SAMPLES) > 0).astype("float32")
    return X, y


def make_fit(epochs: int) -> Callable[[], Any]:
    import keras

    X, y = make_data()

    def fit() -> Any:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model.fit(X, y, epochs=epochs, batch_size=BATCH, validation_split=0.2, verbose=0)

    return fit


def variants(root: str) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """name -> (switch on, switch off). Stores are created here, before any timing."""
    import autotrack

    autotrack.set_tracking_uri(f"{root}/autotrack")
    autotrack.search_runs()  # creates the store
    out: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "plain": (lambda: None, lambda: None),
        "autotrack": (
            lambda: autotrack.tensorflow.autolog(),
            lambda: _autotrack_off(autotrack),
        ),
        "autotrack log_models=False": (
            lambda: autotrack.tensorflow.autolog(log_models=False),
            lambda: _autotrack_off(autotrack),
        ),
    }
    if mlflow_available():
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
        mlflow.search_experiments()  # creates and migrates the database
        out["mlflow"] = (
            lambda: mlflow.tensorflow.autolog(silent=True),
            lambda: mlflow.tensorflow.autolog(disable=True),
        )
        out["mlflow log_models=False"] = (
            lambda: mlflow.tensorflow.autolog(log_models=False, silent=True),
            lambda: mlflow.tensorflow.autolog(disable=True),
        )
    return out


def _autotrack_off(autotrack: Any) -> None:
    autotrack.tensorflow.autolog(disable=True)
    autotrack.flush()  # deferred model uploads finish outside the next variant's timing


def timed_rounds(fit: Callable[[], Any], switches: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds per variant and round; round 0 is a warm-up for every variant."""
    times: dict[str, list[float]] = defaultdict(list)
    for round_ in range(repeat + 1):
        for name, (on, off) in switches.items():
            on()
            try:
                started = time.perf_counter()
                fit()
                elapsed = time.perf_counter() - started
            finally:
                off()
            if round_:
                times[name].append(elapsed)
        print(f"round {round_}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()))
    return times


def added(times: dict[str, list[float]], name: str) -> float:
    """Median over rounds of (variant - plain) in the same round: paired, so that the load
    of a shared machine, which drifts between rounds, cancels out."""
    differences = [t - p for t, p in zip(times[name], times["plain"], strict=True)]
    return max(statistics.median(differences), 0.0)


def autotrack_own_time(fit: Callable[[], Any], epochs: int, repeat: int) -> dict[str, float]:
    """Seconds spent in autotrack's hooks and injected callback per fit (medians), measured
    by timing those functions themselves."""
    import autotrack
    from autotrack import engine, tracking
    from autotrack.integrations import keras as integration

    spent: dict[str, float] = defaultdict(float)
    originals: list[tuple[Any, str, Any]] = []

    def timer(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(owner, name, timed)

    timer(tracking, "start_run", "run start and end")
    timer(engine, "_end_managed", "run start and end")
    timer(integration.FitHooks, "before", "before")
    timer(integration, "_log_model", "model save")
    timer(integration.FitHooks, "after", "after (summary, model save)")
    timer(integration.FitRecorder, "train_begin", "callback")
    timer(integration.FitRecorder, "epoch_end", "callback")
    timer(integration.FitRecorder, "train_end", "callback")
    rounds: dict[str, list[float]] = defaultdict(list)
    autotrack.tensorflow.autolog()
    try:
        for round_ in range(repeat + 1):
            spent.clear()
            fit()
            autotrack.flush()
            if round_:
                for label, seconds in spent.items():
                    rounds[label].append(seconds)
    finally:
        autotrack.tensorflow.autolog(disable=True)
        for owner, name, original in originals:
            setattr(owner, name, original)
    medians = {label: statistics.median(values) for label, values in rounds.items()}
    medians["callback per epoch"] = medians["callback"] / epochs
    medians["total"] = sum(medians[k] for k in ("run start and end", "before", "callback",
                                                "after (summary, model save)"))  # fmt: skip
    medians["total without model"] = medians["total"] - medians["model save"]
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    fit = make_fit(args.epochs)
    with tempfile.TemporaryDirectory() as root:
        times = timed_rounds(fit, variants(root), args.repeat)
        own = autotrack_own_time(fit, args.epochs, args.repeat)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = []
    for label, ours, theirs in (
        ("models logged", "autotrack", "mlflow"),
        ("log_models=False", "autotrack log_models=False", "mlflow log_models=False"),
    ):
        measured = own["total" if ours == "autotrack" else "total without model"]
        row: dict[str, Any] = {
            "workload": f"keras MLP {args.epochs} epochs, {label}",
            "plain_s": medians["plain"],
            # end to end, but never below what was measured directly on the training thread
            "autotrack_added_s": max(added(times, ours), measured),
            "autotrack_added_end_to_end_s": added(times, ours),
            "autotrack_own_work_s": measured,
            "mlflow_added_s": None,
            "ratio": None,
        }
        if theirs in times:
            row["mlflow_added_s"] = added(times, theirs)
            row["ratio"] = row["mlflow_added_s"] / max(row["autotrack_added_s"], 1e-4)
        rows.append(row)
    print_rows(rows)
    print("autotrack's own time on the training thread (median per fit):")
    for label, seconds in own.items():
        print(f"  {label:32} {seconds * 1000:8.3f} ms")
    write("keras", rows, times_s=times, autotrack_own_s=own, epochs=args.epochs,
          samples=SAMPLES, batch_size=BATCH)  # fmt: skip


if __name__ == "__main__":
    main()
