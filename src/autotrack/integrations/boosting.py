"""What the XGBoost and LightGBM integrations share: a buffered per-iteration metric stream,
param rendering, early-stopping summaries, feature-importance artifacts and the evaluation of
scikit-learn wrappers.

Everything here is either a small pure function (what to record) or a thin writer over a
`RunHandle` (how it is recorded); no framework is imported.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autotrack.entities import Metric

if TYPE_CHECKING:
    from autotrack.integrations.base import Call
    from autotrack.tracking import RunHandle

#: A stream writes once it holds this many points, or when `FLUSH_SECONDS` passed since its
#: last write (so a live view of a long training stays current).
FLUSH_POINTS = 20_000
FLUSH_SECONDS = 2.0


# -- per-iteration metrics -----------------------------------------------------------------------
class MetricStream:
    """Metric points of one training call, buffered and written in batches.

    `add` costs a few hundred nanoseconds per point on the training thread; the store sees one
    batch per `FLUSH_POINTS` points or `FLUSH_SECONDS` seconds. The history of every key is
    kept (step -> value) so the best iteration's metrics can be looked up after training.
    """

    def __init__(self, run: RunHandle) -> None:
        self.run = run
        self.history: dict[str, dict[int, float]] = {}
        self.last_step: int | None = None
        self._rows: list[tuple[str, str, float, int, int]] = []
        self._last_write = time.monotonic()

    def add(self, step: int, values: Iterable[tuple[str, float]]) -> None:
        """Buffer `(key, value)` pairs measured at iteration `step`."""
        stamp = int(time.time() * 1000)
        run_id = self.run.run_id
        rows = self._rows
        history = self.history
        for key, value in values:
            number = float(value)
            points = history.get(key)
            if points is None:
                _check_key(key)
                points = history[key] = {}
            points[step] = number
            rows.append((run_id, key, number, step, stamp))
        self.last_step = step
        if len(rows) >= FLUSH_POINTS or time.monotonic() - self._last_write >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Hand every buffered point to the store (one batch)."""
        rows, self._rows = self._rows, []
        self._last_write = time.monotonic()
        if not rows:
            return
        store = self.run.store
        add_rows = getattr(store, "add_metric_rows", None)
        if add_rows is not None:
            add_rows(rows)
        else:
            store.log_batch(self.run.run_id, metrics=[Metric(*row[1:]) for row in rows])

    def at(self, step: int, prefix: str = "best_") -> dict[str, float]:
        """Every key's value at iteration `step`, keys prefixed (`best_valid_0-auc`)."""
        return {
            f"{prefix}{key}": points[step] for key, points in self.history.items() if step in points
        }


def _check_key(key: str) -> None:
    from autotrack.tracking import validate_key

    validate_key(key, "metric key")


def log_history(run: RunHandle, history: Mapping[str, Mapping[str, Sequence[Any]]]) -> int:
    """Log a finished `{eval_name: {metric: [values...]}}` history (the wrappers'
    `evals_result`) with the iteration as step; returns the number of iterations."""
    stream = MetricStream(run)
    length = 0
    for data_name, metrics in history.items():
        for metric_name, values in metrics.items():
            key = f"{data_name}-{metric_name}"
            for step, value in enumerate(values):
                stream.add(step, ((key, value),))
            length = max(length, len(values))
    stream.flush()
    return length


# -- params --------------------------------------------------------------------------------------
def render(value: Any) -> str:
    """A param value as text: functions and classes by name (no memory addresses), the rest
    with `str`."""
    if isinstance(value, str):
        return value
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.isclass(value):
        return getattr(value, "__qualname__", None) or getattr(value, "__name__", repr(value))
    if callable(value) and not isinstance(value, (list, tuple, dict)):
        return type(value).__qualname__
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) if callable(v) else repr(v) for v in value) + "]"
    return str(value)


def given_params(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str]:
    """Params the user set (None means "library default" and is left to the resolved
    config), rendered."""
    skipped = set(skip)
    return {k: render(v) for k, v in values.items() if v is not None and k not in skipped}


def resolved_extras(
    resolved: Mapping[str, str], logged: Iterable[str], aliases: Mapping[str, str]
) -> dict[str, str]:
    """The library's resolved params that say something new: alias spellings dropped, and
    nothing the user already set under any spelling (params are write-once; the user's value
    as given wins over the library's re-formatted one)."""
    taken = set()
    for key in logged:
        taken.add(key)
        taken.add(aliases.get(key, key))
    return {
        key: value
        for key, value in resolved.items()
        if key not in aliases and key not in taken and value != ""
    }


def tidy_number(text: str) -> str:
    """`0.100000001` (a float32 printed in full) -> `0.1`; other text unchanged."""
    if "." not in text or len(text) < 10:
        return text
    try:
        return f"{float(text):.7g}"
    except ValueError:
        return text


def default_of(call: Call, name: str) -> Any:
    """The value of parameter `name` in this call, the signature's default when not passed."""
    value = call.argument(name, inspect.Parameter.empty)
    if value is not inspect.Parameter.empty:
        return value
    try:
        parameter = inspect.signature(call.original).parameters.get(name)
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def accepts(call: Call, name: str) -> bool:
    """Whether the called function has a parameter `name`."""
    try:
        return name in inspect.signature(call.original).parameters
    except (TypeError, ValueError):
        return False


def set_argument(call: Call, name: str, value: Any) -> None:
    """Pass `value` for parameter `name`, where the user passed it (by position or keyword)."""
    if name not in call.kwargs:
        try:
            names = list(inspect.signature(call.original).parameters)
        except (TypeError, ValueError):
            names = []
        if call.instance is not None and names[:1] in (["self"], ["cls"]):
            names = names[1:]
        if name in names and names.index(name) < len(call.args):
            args = list(call.args)
            args[names.index(name)] = value
            call.args = tuple(args)
            return
    call.kwargs[name] = value


def with_callback(user_callbacks: Any, callback: Any, first: bool = False) -> list[Any]:
    """A new list: the user's callbacks (never modified) and ours, after them or `first`."""
    if user_callbacks is None:
        return [callback]
    return [callback, *user_callbacks] if first else [*user_callbacks, callback]


# -- early stopping ------------------------------------------------------------------------------
def early_stopping_metrics(
    best_iteration: int,
    best_score: float | None,
    stopped_iteration: int | None,
    best_values: Mapping[str, float],
) -> dict[str, float]:
    """`best_iteration`, `best_score`, `stopped_iteration` and each metric at the best
    iteration (`best_<eval>-<metric>`)."""
    out: dict[str, float] = {"best_iteration": float(best_iteration)}
    if best_score is not None:
        out["best_score"] = float(best_score)
    if stopped_iteration is not None:
        out["stopped_iteration"] = float(stopped_iteration)
    out.update(best_values)
    return out


# -- feature importance --------------------------------------------------------------------------
def importance_payload(names: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    """`{feature: importance}`, largest first (ties keep the model's feature order)."""
    pairs = sorted(enumerate(zip(names, values, strict=True)), key=lambda p: (-p[1][1], p[0]))
    return {str(name): float(value) for _, (name, value) in pairs}


def log_importances(
    run: RunHandle, importances: Mapping[str, Mapping[str, float]], library: str
) -> None:
    """`feature_importance_<type>.json` and `.png` per importance type (background worker)."""
    from autotrack import plots

    for kind, values in importances.items():
        if not values:
            continue
        ordered = importance_payload(list(values), list(values.values()))
        run.log_dict(ordered, f"feature_importance_{kind}.json")
        figure = plots.feature_importance_figure(
            list(ordered), list(ordered.values()), f"{library} feature importance ({kind})"
        )
        run.log_figure(figure, f"feature_importance_{kind}.png")


# -- scikit-learn wrappers -----------------------------------------------------------------------
def evaluation_set(
    X: Any,
    y: Any,
    sample_weight: Any,
    eval_set: Sequence[Any] | None,
    names: Sequence[str],
    eval_weights: Sequence[Any] | None,
) -> tuple[str, Any, Any, Any]:
    """(name, X, y, sample_weight) of the data a wrapper is evaluated on: its last
    evaluation set, else the training data (named `training`)."""
    if not eval_set:
        return "training", X, y, sample_weight
    index = len(eval_set) - 1
    X_eval, y_eval = eval_set[index][0], eval_set[index][1]
    weight = eval_weights[index] if eval_weights is not None and len(eval_weights) > index else None
    if X_eval is X and y_eval is y:
        return "training", X, y, sample_weight if weight is None else weight
    name = names[index] if len(names) > index else f"eval_{index}"
    return name, X_eval, y_eval, weight


def log_wrapper_evaluation(
    run: RunHandle, estimator: Any, name: str, X: Any, y: Any, sample_weight: Any
) -> Any:
    """The scikit-learn metric suite and plots of a fitted wrapper on one dataset (metrics
    now, plots on the background worker); returns the Evaluation."""
    from autotrack import evaluation

    result = evaluation.evaluate(estimator, X, y, sample_weight=sample_weight)
    evaluation.log_evaluation(run, result, name)
    return result


def estimator_tags(estimator: Any) -> dict[str, str]:
    """`estimator_name` / `estimator_class`, as the scikit-learn integration tags runs."""
    cls = type(estimator)
    return {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
    }


def log_datasets(run: RunHandle, sets: Iterable[tuple[str, Any, Any]]) -> None:
    """Fingerprint each (context, X, y) on the background worker."""
    from autotrack import datasets

    for context, X, y in sets:
        if X is not None and not isinstance(X, (str, bytes)) and not hasattr(X, "__fspath__"):
            datasets.log_dataset(run, X, y, context=context)


def evaluable(estimator: Any) -> bool:
    """Classifiers and regressors get the scikit-learn metric suite (rankers do not)."""
    from autotrack.evaluation import task_kind

    return task_kind(estimator) in ("classifier", "regressor")
