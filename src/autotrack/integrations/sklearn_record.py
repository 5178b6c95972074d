"""What the scikit-learn integration records, as small pure functions: params rendered for
humans, which estimators are preprocessors, search candidates from `cv_results_`,
cross-validation summaries, feature importances, the user's variable names.

Nothing here logs; `autotrack.integrations.sklearn` does the I/O.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autotrack.integrations.base import Call

#: A rendered param longer than this is cut, with a marker saying how long it was.
MAX_PARAM_CHARS = 500

#: Standalone fits of classes from these modules open no run by default (MLflow's list).
PREPROCESSING_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
    "sklearn.compose._column_transformer",
)

#: Frames from these packages are skipped when looking for the user's variable names.
_LIBRARY_PACKAGES = frozenset(
    {
        "autotrack", "wrapt", "sklearn", "joblib", "numpy", "scipy", "pandas", "contextlib",
        "threading", "concurrent", "xgboost", "lightgbm", "functools", "importlib",
    }
)  # fmt: skip


# -- params and tags -------------------------------------------------------------------------
def render(value: Any) -> str:
    """A param value as a person reads it: estimators by their repr, functions and classes by
    qualified name, arrays summarised; anything long cut with a marker."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = str(value)
    elif isinstance(value, type):
        text = f"{value.__module__}.{value.__qualname__}"
    elif callable(value) and not hasattr(value, "get_params") and _callable_name(value):
        module = getattr(value, "__module__", None)
        text = f"{module}.{_callable_name(value)}" if module else str(_callable_name(value))
    elif type(value).__module__ == "numpy" and hasattr(value, "shape"):
        import numpy as np

        text = np.array2string(np.asarray(value), threshold=20, separator=", ")
    else:
        try:
            text = repr(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    text = " ".join(text.split()) if "\n" in text else text
    if len(text) > MAX_PARAM_CHARS:
        text = f"{text[: MAX_PARAM_CHARS - 40]}...[truncated, {len(text)} chars]"
    return text


def _callable_name(value: Any) -> str | None:
    """Functions, methods, numpy's dispatchers and ufuncs: their (qualified) name."""
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    return name if isinstance(name, str) else None


def estimator_params(estimator: Any, deep: bool = True) -> dict[str, str]:
    """`get_params(deep)` rendered; Pipeline steps come as `<step>__<param>`."""
    try:
        params = estimator.get_params(deep=deep)
    except Exception:  # a user subclass with a broken get_params must not lose the run
        return {}
    return {str(key): render(value) for key, value in params.items()}


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def estimator_tags(estimator: Any) -> dict[str, str]:
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": class_path(cls)}


def library_class(cls: type) -> type | None:
    """The first scikit-learn class in `cls`'s MRO (itself, for library classes)."""
    for klass in cls.__mro__:
        if (klass.__module__ or "").startswith("sklearn."):
            return klass
    return None


def is_preprocessor(estimator: Any) -> bool:
    """Scalers, imputers, encoders, vectorisers, selectors, ColumnTransformer: the steps of a
    pipeline, whose standalone fits open no run unless asked."""
    from autotrack.evaluation import task_kind

    base = library_class(type(estimator))
    if base is None or not base.__module__.startswith(PREPROCESSING_MODULES):
        return False
    return task_kind(estimator) not in ("classifier", "regressor")


# -- searches -----------------------------------------------------------------------------
@dataclass
class Candidate:
    """One row of `cv_results_`: a child run."""

    index: int
    params: dict[str, Any]
    metrics: dict[str, float]
    folds: dict[str, list[float]] = field(default_factory=dict)  # e.g. test_score per split


def rank_column(cv_results: dict[str, Any], refit: Any = None) -> str | None:
    """`rank_test_score`; for a multi-metric search the scorer it refits on
    (`rank_test_<refit>`), else the first `rank_test_<scorer>`."""
    if "rank_test_score" in cv_results:
        return "rank_test_score"
    if isinstance(refit, str) and f"rank_test_{refit}" in cv_results:
        return f"rank_test_{refit}"
    ranks = sorted(key for key in cv_results if key.startswith("rank_test_"))
    return ranks[0] if ranks else None


def candidates(
    cv_results: dict[str, Any], max_runs: int | None = None, refit: Any = None
) -> list[Candidate]:
    """Candidates best first (by rank, then position); at most `max_runs` of them."""
    import numpy as np

    params_list = list(cv_results.get("params", []))
    count = len(params_list)
    rank_key = rank_column(cv_results, refit)
    ranks = np.asarray(cv_results[rank_key]) if rank_key else np.arange(count)
    order = sorted(range(count), key=lambda i: (ranks[i], i))
    if max_runs is not None:
        order = order[: max(0, max_runs)]
    numeric: dict[str, Any] = {}
    splits: dict[str, list[tuple[int, Any]]] = {}
    for key, column in cv_results.items():
        if key == "params" or key.startswith("param_"):
            continue
        array = np.asarray(column)
        if array.dtype.kind not in "biuf" or array.shape != (count,):
            continue
        head, _, rest = key.partition("_")
        if head.startswith("split") and head[5:].isdigit() and rest:
            splits.setdefault(rest, []).append((int(head[5:]), array))
        else:
            numeric[key] = array
    rows = []
    for i in order:
        metrics = {key: float(col[i]) for key, col in numeric.items() if math.isfinite(col[i])}
        folds = {
            name: [float(col[i]) for _, col in sorted(parts, key=lambda p: p[0])]
            for name, parts in splits.items()
        }
        rows.append(Candidate(i, dict(params_list[i]), metrics, folds))
    return rows


def cv_results_csv(cv_results: dict[str, Any]) -> str:
    """The whole `cv_results_` table, one row per candidate (all columns, folds included)."""
    columns = list(cv_results)
    count = len(cv_results.get("params", []))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for i in range(count):
        writer.writerow([_cell(cv_results[c][i]) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return "; ".join(f"{k}={render(v)}" for k, v in value.items())
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    return value if isinstance(value, (str, int, float, bool)) or value is None else render(value)


# -- cross-validation ------------------------------------------------------------------------
def fold_results(result: Any) -> dict[str, list[float]]:
    """Per-fold numeric arrays of a `cross_validate` dict (or `cross_val_score`'s array)."""
    import numpy as np

    if not isinstance(result, dict):
        result = {"test_score": result}
    folds = {}
    for key, values in result.items():
        array = np.asarray(values) if not isinstance(values, list) else None
        if array is not None and array.ndim == 1 and array.dtype.kind in "biuf":
            folds[str(key)] = [float(v) for v in array]
    return folds


def fold_summary(folds: dict[str, list[float]]) -> dict[str, float]:
    """`mean_<name>` and `std_<name>` (population std, as `cv_results_` reports it)."""
    import numpy as np

    summary = {}
    for name, values in folds.items():
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            summary[f"mean_{name}"] = float(np.mean(finite))
            summary[f"std_{name}"] = float(np.std(finite))
    return summary


# -- feature importances -------------------------------------------------------------------
@dataclass
class Importances:
    """What an estimator says about its features (importances or coefficients)."""

    source: str  # "feature_importances_" | "coef_"
    features: list[str]
    values: list[float]  # per feature; mean |coef| over classes when coef_ is 2-D
    per_class: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "features": self.features,
            "values": self.values,
        }
        if self.per_class is not None:
            out["per_class"] = self.per_class
        return out


def final_estimator(estimator: Any) -> tuple[Any, Any]:
    """(the estimator that owns the importances, the pipeline prefix feeding it or None)."""
    best = getattr(estimator, "best_estimator_", None)
    if best is not None:
        estimator = best
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps and hasattr(estimator, "__getitem__"):
        return steps[-1][1], estimator[:-1]
    return estimator, None


def importances(estimator: Any) -> Importances | None:
    """Importances of a fitted estimator (searches: the best one; pipelines: the last step,
    named by the preceding steps' output features); None if it has none."""
    import numpy as np

    model, prefix = final_estimator(estimator)
    try:
        if hasattr(model, "feature_importances_"):
            source, values = "feature_importances_", np.asarray(model.feature_importances_)
        elif hasattr(model, "coef_"):
            source, values = "coef_", np.asarray(model.coef_)
        else:
            return None
    except (AttributeError, ValueError, TypeError):  # not fitted / not available here
        return None
    if values.dtype.kind not in "biuf" or values.ndim not in (1, 2) or values.size == 0:
        return None
    per_class = None
    if values.ndim == 2 and values.shape[0] == 1:
        values = values[0]
    elif values.ndim == 2:
        labels = [str(c) for c in getattr(model, "classes_", range(values.shape[0]))]
        if len(labels) != values.shape[0]:
            labels = [str(i) for i in range(values.shape[0])]
        per_class = {label: row.tolist() for label, row in zip(labels, values, strict=True)}
        values = np.abs(values).mean(axis=0)
    names = feature_names(model, prefix, len(values))
    return Importances(source, names, [float(v) for v in values], per_class)


def feature_names(model: Any, prefix: Any, count: int) -> list[str]:
    """DataFrame column names when the model (or its pipeline) saw them, else x0, x1, ..."""
    names = None
    if prefix is not None:
        try:
            names = list(prefix.get_feature_names_out())
        except Exception:  # a step without get_feature_names_out
            names = None
    if names is None:
        found = getattr(model, "feature_names_in_", None)
        names = list(found) if found is not None else None
    if names is None or len(names) != count:
        return [f"x{i}" for i in range(count)]
    return [str(n) for n in names]


# -- call arguments -------------------------------------------------------------------------
def data_argument(call: Call, name: str, position: int) -> Any:
    """An argument by name, or by position when the signature cannot be read."""
    value = call.argument(name)
    if value is None and len(call.args) > position and call.bound() is None:
        value = call.args[position]
    return value


def fit_data(call: Call) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) as the user passed them."""
    X = data_argument(call, "X", 0)
    y = data_argument(call, "y", 1)
    if y is None:
        y = call.argument("Y")
    weight = call.argument("sample_weight")
    if weight is None:
        weight = call.kwargs.get("sample_weight")
    return X, y, weight


# -- the user's names for things -----------------------------------------------------------
def user_frame() -> types.FrameType | None:
    """The innermost frame outside autotrack and the ML libraries: the user's code."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] not in _LIBRARY_PACKAGES:
            return frame
        frame = frame.f_back
    return None


def variable_name(obj: Any, frame: types.FrameType | None = None) -> str | None:
    """The name the user's code has for `obj` (`X_test`), or None for an expression."""
    frame = frame or user_frame()
    if frame is None or obj is None:
        return None
    for namespace in (frame.f_locals, frame.f_globals):
        for name, value in list(namespace.items()):
            if value is obj and name.isidentifier() and not name.startswith("_"):
                return name
    return None


def head(data: Any, rows: int = 5) -> Any:
    """A copy of the first rows (for the model's input example and signature)."""
    if data is None:
        return None
    try:
        if hasattr(data, "iloc"):
            return data.iloc[:rows].copy()
        if hasattr(data, "tocsr"):
            return data.tocsr()[:rows].copy()
        if hasattr(data, "shape") and hasattr(data, "copy"):
            return data[:rows].copy()
        if isinstance(data, (list, tuple)):
            return list(data[:rows])
    except Exception:  # an exotic container: no example rather than no run
        return None
    return None


# -- several fits in one user run ------------------------------------------------------------
_RUN_STATE_LOCK = threading.Lock()
_run_models: dict[str, int] = {}


def model_path(run_id: str) -> str:
    """`model`, then `model-2`, ... when one user run holds several fits."""
    with _RUN_STATE_LOCK:
        count = _run_models[run_id] = _run_models.get(run_id, 0) + 1
    return "model" if count == 1 else f"model-{count}"
