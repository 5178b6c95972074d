"""Post-training metrics: after an autologged fit, `sklearn.metrics` calls (and
`estimator.score`) on that model's predictions are logged to the model's run.

Two weak maps, as MLflow keeps: fitted estimator -> run, and prediction array -> (run,
estimator, the data it was predicted from, that data's variable name). A metric call is
matched by the identity of one of its arguments with a registered prediction; nothing is kept
alive by these maps. The first metric call on a dataset also computes the full metric suite
and plots for it (`X_test_accuracy_score`, `X_test_confusion_matrix.png`, ...).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from autotrack import datasets, tracking
from autotrack.evaluation import evaluate, is_evaluating, log_evaluation, task_kind
from autotrack.integrations import sklearn_record as record
from autotrack.integrations.base import Call, Hooks

if TYPE_CHECKING:
    from autotrack.integrations.sklearn import SklearnConfig

V = TypeVar("V")

UNKNOWN_DATASET = "unknown_dataset"


class IdentityWeakMap(Generic[V]):
    """object -> value by identity, dropping entries when the object is collected.

    Identity, not equality: estimators may define `__eq__`, arrays compare element-wise.
    Objects that cannot be weakly referenced (lists) are simply not stored.
    """

    def __init__(self) -> None:
        self._data: dict[int, tuple[weakref.ref, V]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def set(self, obj: Any, value: V) -> bool:
        key = id(obj)

        def drop(ref: weakref.ref, key: int = key) -> None:
            with self._lock:
                entry = self._data.get(key)
                if entry is not None and entry[0] is ref:
                    del self._data[key]

        try:
            ref = weakref.ref(obj, drop)
        except TypeError:
            return False
        with self._lock:
            self._data[key] = (ref, value)
        return True

    def get(self, obj: Any) -> V | None:
        entry = self._data.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        return entry[1]


@dataclass(frozen=True)
class Prediction:
    """Where a prediction array came from."""

    run_id: str
    estimator: weakref.ref
    data: Callable[[], Any]  # the X it was predicted from (weak where possible)
    dataset: str
    method: str  # predict / predict_proba / decision_function / ...


def _weak_or_strong(obj: Any) -> Callable[[], Any]:
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: None  # never keep the user's data alive for a metric


class Registry:
    """The process-wide state of post-training metrics."""

    def __init__(self) -> None:
        self.models: IdentityWeakMap[str] = IdentityWeakMap()
        self.predictions: IdentityWeakMap[Prediction] = IdentityWeakMap()
        self._lock = threading.Lock()
        self._dataset_ids: dict[tuple[str, str], int] = {}  # (run, name) -> id(X)
        self._evaluated: set[tuple[str, str]] = set()  # (run, dataset) with the full suite
        self._calls: dict[tuple[str, str, str], list[str]] = {}  # (run, metric, ds) -> calls
        self.info: dict[str, dict[str, str]] = {}  # run -> metric key -> call description

    def register_model(self, estimator: Any, run_id: str) -> None:
        self.models.set(estimator, run_id)

    def run_of(self, estimator: Any) -> str | None:
        return self.models.get(estimator)

    def dataset_name(self, run_id: str, data: Any, name: str | None) -> str:
        """`X_test`; `X_test-2` when the same name later stands for different data."""
        base = name or UNKNOWN_DATASET
        with self._lock:
            suffix = 1
            while True:
                candidate = base if suffix == 1 else f"{base}-{suffix}"
                known = self._dataset_ids.setdefault((run_id, candidate), id(data))
                if known == id(data):
                    return candidate
                suffix += 1

    def register_prediction(
        self, result: Any, run_id: str, estimator: Any, data: Any, dataset: str, method: str
    ) -> None:
        record = Prediction(run_id, weakref.ref(estimator), _weak_or_strong(data), dataset, method)
        self.predictions.set(result, record)
        # A numpy view's `.base` is the array owning the memory, not the array it was sliced
        # from: when the prediction is itself a view, register its owner too, so that slices
        # of the prediction (`proba[:, 1]`) lead back to it.
        base = getattr(result, "base", None)
        if base is not None and type(base) is type(result) and self.predictions.get(base) is None:
            self.predictions.set(base, record)

    def lookup(self, value: Any) -> tuple[Prediction, bool] | None:
        """(record, exact) for a registered prediction, or a numpy view of one
        (`proba[:, 1]` is a view of `proba`: its `.base` chain leads back to it)."""
        record = self.predictions.get(value)
        if record is not None:
            return record, True
        base = getattr(value, "base", None)
        for _ in range(4):
            if base is None:
                return None
            record = self.predictions.get(base)
            if record is not None:
                return record, False
            base = getattr(base, "base", None)
        return None

    def find_prediction(self, values: tuple[Any, ...]) -> tuple[Any, Prediction, bool] | None:
        """(argument, record, exact) for the first argument that is, or views, a prediction."""
        for value in values:
            found = self.lookup(value)
            if found is not None:
                return value, *found
        return None

    def metric_key(self, run_id: str, metric: str, dataset: str, call: str) -> str:
        """`accuracy_score_X_test`; a second, differently-parametrised call of the same
        metric on the same data gets `accuracy_score-2_X_test` (identical calls reuse the
        key, adding a point to its history)."""
        with self._lock:
            calls = self._calls.setdefault((run_id, metric, dataset), [])
            if call not in calls:
                calls.append(call)
            index = calls.index(call) + 1
            key = f"{metric}_{dataset}" if index == 1 else f"{metric}-{index}_{dataset}"
            self.info.setdefault(run_id, {})[key] = call
            return key

    def first_evaluation(self, run_id: str, dataset: str) -> bool:
        """True once per (run, dataset): the caller then computes the full suite."""
        with self._lock:
            if (run_id, dataset) in self._evaluated:
                return False
            self._evaluated.add((run_id, dataset))
            return True

    def call_info(self, run_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self.info.get(run_id, {}))


REGISTRY = Registry()


def describe_call(function: str, names: list[str], values: tuple[Any, ...]) -> str:
    """`f1_score(y_true, y_pred=<predict(X_test)>, average='macro')`; a slice of a
    prediction shows as `<predict_proba(X_test)[...]>`."""
    parts = []
    for name, value in zip(names, values, strict=False):
        found = REGISTRY.lookup(value)
        if found is not None:
            record, exact = found
            parts.append(f"{name}=<{record.method}({record.dataset}){'' if exact else '[...]'}>")
        elif hasattr(value, "shape") or isinstance(value, (list, tuple)):
            parts.append(name)
        else:
            parts.append(f"{name}={value!r}"[:80])
    return f"{function}({', '.join(parts)})"


# -- post-training metrics -----------------------------------------------------------------
def _post_training_on(call: Call) -> bool:
    config: SklearnConfig = call.config  # type: ignore[assignment]
    return config.log_post_training_metrics and not is_evaluating()


class PredictHooks(Hooks):
    """Remember which run and dataset a prediction of an autologged model belongs to."""

    opens_run = False

    def records(self, call: Call) -> bool:
        return _post_training_on(call) and REGISTRY.run_of(call.instance) is not None

    def after(self, call: Call, result: Any) -> None:
        run_id = REGISTRY.run_of(call.instance)
        if run_id is None:
            return
        X = record.data_argument(call, "X", 0)
        dataset = REGISTRY.dataset_name(run_id, X, record.variable_name(X))
        REGISTRY.register_prediction(
            result, run_id, call.instance, X, dataset, call.target.attribute
        )


class ScoreHooks(Hooks):
    """`model.score(X_test, y_test)` after fit: `<Class>_score_X_test` and the X_test suite."""

    opens_run = False

    def records(self, call: Call) -> bool:
        return _post_training_on(call) and REGISTRY.run_of(call.instance) is not None

    def after(self, call: Call, result: Any) -> None:
        run_id = REGISTRY.run_of(call.instance)
        if run_id is None or not _is_number(result):
            return
        X, y, weight = record.fit_data(call)
        dataset = REGISTRY.dataset_name(run_id, X, record.variable_name(X))
        name = f"{type(call.instance).__name__}_score"
        key = REGISTRY.metric_key(run_id, name, dataset, f"{name}(X={dataset})")
        run = tracking.RunHandle(run_id)
        run.log_metric(key, float(result))
        _held_out_suite(run, call, call.instance, X, y, weight, None, dataset)


class MetricHooks(Hooks):
    """A `sklearn.metrics` function called on an autologged model's predictions."""

    opens_run = False

    def records(self, call: Call) -> bool:
        if not _post_training_on(call):
            return False
        found = REGISTRY.find_prediction((*call.args, *call.kwargs.values()))
        call.state["found"] = found
        return found is not None

    def after(self, call: Call, result: Any) -> None:
        argument, prediction, exact = call.state["found"]
        if not _is_number(result):
            return
        bound = call.bound()
        arguments = dict(bound.arguments) if bound is not None else dict(call.kwargs)
        function = call.target.attribute
        described = describe_call(function, list(arguments), tuple(arguments.values()))
        key = REGISTRY.metric_key(prediction.run_id, function, prediction.dataset, described)
        run = tracking.RunHandle(prediction.run_id)
        run.log_metric(key, float(result))
        run.defer(_log_call_info, run)
        y_true = arguments.get("y_true", arguments.get("labels_true"))
        if y_true is argument:
            y_true = None
        estimator = prediction.estimator()
        y_pred = argument if exact and prediction.method == "predict" else None
        weight = arguments.get("sample_weight")
        _held_out_suite(
            run, call, estimator, prediction.data(), y_true, weight, y_pred, prediction.dataset
        )


def _log_call_info(run: Any) -> None:
    run.log_dict(REGISTRY.call_info(run.run_id), "metric_info.json")


def _held_out_suite(
    run: Any, call: Call, estimator: Any, X: Any, y: Any, weight: Any, y_pred: Any, dataset: str
) -> None:
    """Once per (run, dataset): every metric and plot the training data got, for this data."""
    if estimator is None or X is None:
        return
    if y is None and task_kind(estimator) != "clusterer":
        return  # a later call with the true labels gets the suite
    if not REGISTRY.first_evaluation(run.run_id, dataset):
        return
    config: SklearnConfig = call.config  # type: ignore[assignment]
    evaluation = evaluate(estimator, X, y, sample_weight=weight, y_pred=y_pred)
    log_evaluation(run, evaluation, dataset, plots=config.log_plots)
    if config.log_datasets:
        context = dataset if dataset != "train" else "eval_train"
        datasets.log_dataset(run, X, y, context, dataset)


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value)) and getattr(value, "ndim", 0) == 0
    except (TypeError, ValueError):
        return False
