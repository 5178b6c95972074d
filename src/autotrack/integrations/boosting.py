"""What the XGBoost and LightGBM integrations share: a buffered per-iteration metric stream,
param rendering, early-stopping summaries, feature-importance artifacts, and what a
scikit-learn wrapper's fit records after training (evaluation, importances, model).

Everything here is either a small pure function (what to record) or a thin writer over a
`RunHandle` (how it is recorded); no framework is imported.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from autotrack.entities import Metric
from autotrack.integrations.base import Hooks, PatchTarget

if TYPE_CHECKING:
    from autotrack.integrations.base import Call, CommonConfig
    from autotrack.tracking import RunHandle

#: A stream writes once it holds this many points, or when `FLUSH_SECONDS` passed since its
#: last write (so a live view of a long training stays current).
FLUSH_POINTS = 20_000
FLUSH_SECONDS = 2.0


# -- per-iteration metrics -----------------------------------------------------------------------
class MetricStream:
    """Metric points of one training call, buffered and written in batches.

    `add` costs well under a microsecond per point on the training thread; the store sees one
    batch per `FLUSH_POINTS` points or `FLUSH_SECONDS` seconds. Nothing is kept once written:
    the libraries keep their own evaluation history.
    """

    def __init__(self, run: RunHandle) -> None:
        self.run = run
        self.keys: set[str] = set()
        self.rejected: set[str] = set()
        self.last_step: int | None = None
        self._rows: list[tuple[str, str, float, int, int]] = []
        self._last_write = time.monotonic()

    def add(self, step: int, values: Iterable[tuple[str, float]]) -> None:
        """Buffer `(key, value)` pairs measured at iteration `step`."""
        stamp = int(time.time() * 1000)
        run_id = self.run.run_id
        rows = self._rows
        keys = self.keys
        for key, value in values:
            if key not in keys:
                if key in self.rejected or not self._accept(key):
                    continue
                keys.add(key)
            rows.append((run_id, key, float(value), step, stamp))
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

    def _accept(self, key: str) -> bool:
        """A key the store takes; an evaluation set or metric name that makes an invalid key
        (a user's choice, not an autotrack bug) is skipped with one warning."""
        from autotrack.safety import warn_once
        from autotrack.tracking import validate_key

        try:
            validate_key(key, "metric key")
        except ValueError as exc:
            self.rejected.add(key)
            warn_once(("metric key", key), f"autotrack: metric not recorded: {exc}")
            return False
        return True


def history_points(
    history: Mapping[str, Mapping[str, Sequence[Any]]],
) -> Iterable[tuple[int, list[tuple[str, float]]]]:
    """`(step, [(key, value), ...])` per iteration of a finished `{eval_name: {metric:
    [values...]}}` history (the wrappers' `evals_result`)."""
    series = [
        (f"{data_name}-{metric_name}", values)
        for data_name, metrics in history.items()
        for metric_name, values in metrics.items()
    ]
    length = max((len(values) for _, values in series), default=0)
    for step in range(length):
        yield step, [(key, values[step]) for key, values in series if step < len(values)]


def history_at(
    history: Mapping[str, Mapping[str, Sequence[Any]]], index: int, prefix: str = "best_"
) -> dict[str, float]:
    """`best_<eval>-<metric>` values at position `index` of such a history."""
    return {
        f"{prefix}{data}-{metric}": float(values[index])
        for data, metrics in history.items()
        for metric, values in metrics.items()
        if 0 <= index < len(values) and not isinstance(values[index], tuple)
    }


# -- params --------------------------------------------------------------------------------------
_SCALARS = (str, bool, int, float)


def render(value: Any) -> str:
    """A param value as text: functions and classes by name, objects whose text would only
    be a memory address by their type, containers element by element, the rest with `str`."""
    if isinstance(value, str):
        return value
    if isinstance(value, _SCALARS) or value is None:
        return str(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(repr(v) if isinstance(v, str) else render(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if inspect.isroutine(value) or inspect.isclass(value):
        return str(getattr(value, "__qualname__", None) or getattr(value, "__name__", repr(value)))
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # type: ignore[arg-type]
    text = str(value)
    if " at 0x" in text or (callable(value) and not isinstance(value, Mapping)):
        return type(value).__qualname__
    return text


def given_params(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str]:
    """Params the user set (None means "library default" and is left to the resolved
    config), rendered."""
    skipped = set(skip)
    return {k: render(v) for k, v in values.items() if v is not None and k not in skipped}


def call_params(call: Call, names: Iterable[str], defaults: bool = False) -> dict[str, str]:
    """The call's arguments among `names` that were passed (or, with `defaults`, that have a
    non-None default), rendered."""
    out = {}
    for name in names:
        value = default_of(call, name) if defaults else call.argument(name)
        if value is not None:
            out[name] = render(value)
    return out


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


def wrapper_resolved(
    resolved: Mapping[str, str],
    unset: Iterable[str],
    logged: Iterable[str],
    aliases: Mapping[str, str],
) -> dict[str, str]:
    """Resolved params of a scikit-learn wrapper's fit: a wrapper param the user left unset
    (None) under the wrapper's own name with the value the library chose (`learning_rate`,
    not `eta`), every other new one under the library's name."""
    out = {}
    for name in unset:
        canonical = aliases.get(name, name)
        if canonical in resolved and resolved[canonical] != "":
            out[name] = resolved[canonical]
    out.update(resolved_extras(resolved, {*logged, *out}, aliases))
    return out


def tidy_number(text: str) -> str:
    """`0.100000001` (a float32 printed in full) -> `0.1`; other text unchanged."""
    if "." not in text or len(text) < 10:
        return text
    try:
        return f"{float(text):.7g}"
    except ValueError:
        return text


# -- the call's arguments ------------------------------------------------------------------------
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


def inject(call: Call, make: Callable[[Call, MetricStream], Any], first: bool = False) -> Any:
    """Add a metric-streaming callback (built by `make`) to a copy of the call's `callbacks`;
    the stream is kept as `call.state["stream"]`. Returns the callback."""
    assert call.run is not None
    stream = call.state["stream"] = MetricStream(call.run)
    callback = make(call, stream)
    set_argument(call, "callbacks", with_callback(call.argument("callbacks"), callback, first))
    return callback


def flush_stream(call: Call) -> MetricStream | None:
    """Write what the call's stream still holds (after training, or after a failure: the
    iterations before it stay recorded)."""
    stream = call.state.get("stream")
    if stream is not None:
        stream.flush()
    return stream


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


# -- datasets and models -------------------------------------------------------------------------
def log_datasets(run: RunHandle, sets: Iterable[tuple[str, Any, Any]]) -> None:
    """Fingerprint each (context, X, y) on the background worker (files on disk are not
    fingerprinted)."""
    from autotrack import datasets

    for context, X, y in sets:
        if in_memory(X):
            datasets.log_dataset(run, X, y, context=context_name(context))


def context_name(name: str) -> str:
    """An evaluation set's name made safe for tag keys and artifact file names."""
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", str(name)).strip("_") or "eval"


def in_memory(data: Any) -> bool:
    """Array-like data (not None, not a file path)."""
    return data is not None and not isinstance(data, (str, bytes, os.PathLike))


def log_model(run: RunHandle, model: Any, X: Any, y_pred: Any, config: CommonConfig) -> None:
    """Save `model` under `model/` with a signature and input example from `X` (background
    worker)."""
    from autotrack.models import log_model as save

    save(
        model,
        "model",
        run=run,
        X=X,
        y_pred=y_pred,
        log_input_example=config.log_input_examples,
        log_signature=config.log_model_signatures,
    )


# -- scikit-learn wrappers -----------------------------------------------------------------------
def estimator_tags(estimator: Any) -> dict[str, str]:
    """`estimator_name` / `estimator_class`, as the scikit-learn integration tags runs."""
    cls = type(estimator)
    return {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
    }


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


def record_wrapper(
    call: Call,
    booster: Any,
    evaluate_on: tuple[str, Any, Any, Any],
    importances: Callable[[RunHandle, Any, tuple[str, ...]], None],
) -> None:
    """What every wrapper's fit records once trained: the scikit-learn metric suite and plots
    on `evaluate_on` (classifiers and regressors), importances and the wrapper itself."""
    from autotrack import evaluation

    run, estimator, config = call.run, call.instance, call.config
    assert run is not None
    y_pred = None
    if evaluation.task_kind(estimator) in ("classifier", "regressor"):
        name, X, y, weight = evaluate_on
        result = evaluation.evaluate(estimator, X, y, sample_weight=weight)
        evaluation.log_evaluation(run, result, name)
        y_pred = result.y_pred
    types = tuple(getattr(config, "importance_types", ()))
    if types:
        run.defer(importances, run, booster, types)
    if config.log_models:
        snapshot = copy.copy(estimator)  # a later refit rebinds the original's booster
        run.defer(log_model, run, snapshot, call.argument("X"), y_pred, config)


def patch_targets(
    module: ModuleType, engine_name: str, wrapper_base: str, train: Hooks, cv: Hooks, fit: Hooks
) -> list[PatchTarget]:
    """Where a boosting library's training is looked up: `train`/`cv` on the package and on
    its engine module, the `train` its sklearn module imported (the wrappers call that one),
    and `fit` of every wrapper class that defines it."""
    targets: list[PatchTarget] = []
    for owner in (module, getattr(module, engine_name, None)):
        if owner is not None:
            targets += [PatchTarget(owner, "train", train), PatchTarget(owner, "cv", cv)]
    wrappers = getattr(module, "sklearn", None)
    if wrappers is not None:
        if hasattr(wrappers, "train"):
            targets.append(PatchTarget(wrappers, "train", train))
        targets += [PatchTarget(cls, "fit", fit) for cls in wrapper_classes(wrappers, wrapper_base)]
    return targets


def wrapper_classes(module: ModuleType, base_name: str) -> list[type]:
    """Every scikit-learn wrapper class in `module` that defines `fit` itself."""
    base = getattr(module, base_name, None)
    if base is None:
        return []
    return [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, base) and "fit" in vars(cls)
    ]
