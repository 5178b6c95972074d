"""The scikit-learn metric suite for one fitted estimator on one dataset, and the data behind its
plots (confusion matrix, ROC / precision-recall curves, predictions vs truth).

`evaluate` runs on the caller's thread, so it only does what must see the model as it is now:
predictions (and a custom `score`). The metrics and the plot data are computed from those
arrays on first access, which `log_evaluation` arranges to happen on autotrack's background
worker: scikit-learn's metric functions validate their inputs at length, and the full suite
costs tens of milliseconds on a loaded machine, more than the whole budget of a fit.
Shared by the sklearn, XGBoost and LightGBM integrations.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autotrack.tracking import RunHandle

logger = logging.getLogger(__name__)

#: Silhouette is O(n^2) in time; above this many samples it is skipped.
SILHOUETTE_MAX_SAMPLES = 5000
#: Points kept per curve / scatter in the JSON plot data (a UI redraws from it).
MAX_POINTS = 2000

_evaluating: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "autotrack_evaluating", default=False
)


def is_evaluating() -> bool:
    """True while autotrack itself computes metrics, so metric-call hooks stay out of it."""
    return _evaluating.get()


@contextlib.contextmanager
def evaluating() -> Iterator[None]:
    """Mark autotrack's own predict/metric calls: patched calls inside take the engine's fast
    path (also on the background thread) and post-training hooks ignore them."""
    from autotrack.engine import suppressed

    token = _evaluating.set(True)
    try:
        with suppressed():
            yield
    finally:
        _evaluating.reset(token)


@dataclass(frozen=True)
class Curve:
    """Points of one ROC or precision-recall curve (one class for one-vs-rest)."""

    label: str
    x: list[float]
    y: list[float]
    area: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "x": self.x, "y": self.y, "area": self.area}


@dataclass
class Evaluation:
    """Metrics of one estimator on one dataset, plus the arrays its plots are drawn from."""

    kind: str  # "classifier" | "regressor" | "clusterer" | "other"
    y_true: Any = None
    y_pred: Any = None
    y_score: Any = None  # probabilities / decision values, columns follow `labels`
    labels: list[Any] = field(default_factory=list)
    sample_weight: Any = None
    estimator_name: str = ""
    proba: bool = False  # y_score holds probabilities (log_loss applies)
    X: Any = None  # clusterers: the data, for silhouette & co.
    known: dict[str, float] = field(default_factory=dict)  # measured on the caller's thread
    score_is: str | None = None  # `score` equals this metric (the stock mixins' score)

    @functools.cached_property
    def metrics(self) -> dict[str, float]:
        """The suite for this kind (computed once, from the arrays above)."""
        out: dict[str, float] = {}
        with evaluating():
            if self.kind == "classifier" and self.y_true is not None:
                _classification_metrics(self, out)
            elif self.kind == "regressor" and self.y_true is not None:
                _regression_metrics(self, out)
            elif self.kind == "clusterer":
                _clustering_metrics(self, out)
        if self.score_is is not None and self.score_is in out:
            out["score"] = out[self.score_is]
        out.update(self.known)
        return out

    @functools.cached_property
    def confusion_matrix(self) -> list[list[int]] | None:
        """Counts, rows = true label, columns = predicted label, in `labels` order."""
        if self.kind != "classifier" or not _is_1d(self.y_true):
            return None
        from sklearn.metrics import confusion_matrix

        with evaluating():
            counts = confusion_matrix(self.y_true, self.y_pred, labels=self.labels or None)
        return [[int(v) for v in row] for row in counts]

    @functools.cached_property
    def roc_curves(self) -> list[Curve]:
        """One curve for binary tasks, one per class (one-vs-rest) for multiclass."""
        from sklearn.metrics import auc, roc_curve

        def curve(y: Any, score: Any) -> tuple[Any, Any, float]:
            fpr, tpr, _ = roc_curve(y, score, sample_weight=self.sample_weight)
            return fpr, tpr, float(auc(fpr, tpr))

        return self._per_class_curves(curve)

    @functools.cached_property
    def pr_curves(self) -> list[Curve]:
        """Recall on x, precision on y; area = average precision."""
        from sklearn.metrics import average_precision_score, precision_recall_curve

        def curve(y: Any, score: Any) -> tuple[Any, Any, float]:
            precision, recall, _ = precision_recall_curve(
                y, score, sample_weight=self.sample_weight
            )
            ap = average_precision_score(y, score, sample_weight=self.sample_weight)
            return recall, precision, float(ap)

        return self._per_class_curves(curve)

    def _per_class_curves(self, compute: Callable[[Any, Any], tuple[Any, Any, float]]) -> list:
        if self.kind != "classifier" or self.y_score is None or not _is_1d(self.y_true):
            return []
        import numpy as np

        y_true = np.asarray(self.y_true)
        score = np.asarray(self.y_score)
        curves = []
        with evaluating():
            if len(self.labels) == 2:
                column = score if score.ndim == 1 else score[:, 1]
                x, y, area = compute(y_true == self.labels[1], column)
                curves.append(Curve(str(self.labels[1]), *_thin(x, y), area))
            elif score.ndim == 2 and score.shape[1] == len(self.labels):
                for i, label in enumerate(self.labels):
                    positives = y_true == label
                    if positives.all() or not positives.any():
                        continue  # a class absent from this data has no curve
                    x, y, area = compute(positives, score[:, i])
                    curves.append(Curve(str(label), *_thin(x, y), area))
        return curves

    @functools.cached_property
    def prediction_points(self) -> dict[str, list[float]] | None:
        """Truth and prediction pairs of a single-output regressor (thinned to MAX_POINTS)."""
        if self.kind != "regressor" or not _is_1d(self.y_true) or not _is_1d(self.y_pred):
            return None
        import numpy as np

        y_true = np.asarray(self.y_true, dtype=float).ravel()
        y_pred = np.asarray(self.y_pred, dtype=float).ravel()
        if len(y_true) > MAX_POINTS:
            keep = np.random.default_rng(0).choice(len(y_true), MAX_POINTS, replace=False)
            keep.sort()
            y_true, y_pred = y_true[keep], y_pred[keep]
        return {"y_true": y_true.tolist(), "y_pred": y_pred.tolist()}


# -- what to compute -------------------------------------------------------------------------
def task_kind(estimator: Any) -> str:
    """classifier / regressor / clusterer / other, by scikit-learn's own tests ("other" when
    the estimator cannot say, e.g. a meta-estimator whose inner estimator is None)."""
    from sklearn import base

    is_clusterer = getattr(base, "is_clusterer", None)
    try:
        if base.is_classifier(estimator):
            return "classifier"
        if base.is_regressor(estimator):
            return "regressor"
        if is_clusterer is not None:
            return "clusterer" if is_clusterer(estimator) else "other"
    except (AttributeError, TypeError, ValueError):
        return "other"
    return "clusterer" if getattr(estimator, "_estimator_type", None) == "clusterer" else "other"


def evaluate(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    y_pred: Any = None,
    labels_are_fit: bool = False,
) -> Evaluation:
    """Predict with the fitted `estimator` on `X`; the suite is computed from the result.

    `y_pred` reuses predictions the caller already has (a post-training metric call);
    `labels_are_fit` says `X` is the data the estimator was fitted on, so a clusterer's
    `labels_` are its predictions (DBSCAN and friends have no `predict`).
    """
    kind = task_kind(estimator)
    name = type(estimator).__name__
    with evaluating():
        if kind == "clusterer":
            if y_pred is None:
                fitted = getattr(estimator, "labels_", None)
                if labels_are_fit and fitted is not None:
                    y_pred = fitted
                elif hasattr(estimator, "predict"):
                    y_pred = estimator.predict(X)
            return Evaluation("clusterer", y, y_pred, estimator_name=name, X=X)
        result = Evaluation(kind, y, estimator_name=name, sample_weight=sample_weight)
        if kind in ("classifier", "regressor"):
            result.y_pred = estimator.predict(X) if y_pred is None else y_pred
        if kind == "classifier":
            result.labels = list(getattr(estimator, "classes_", []))
            if y is not None and _is_1d(y) and _is_1d(result.y_pred):
                result.y_score, result.proba = _scores(estimator, X, result.labels)
        if y is not None and hasattr(estimator, "score"):
            result.score_is = _stock_score(estimator)
            if result.score_is is None:
                _put(result.known, "score", lambda: _score(estimator, X, y, sample_weight))
        return result


def from_predictions(
    kind: str,
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    labels: list[Any] | None = None,
    sample_weight: Any = None,
    *,
    proba: bool = True,
    estimator_name: str = "",
) -> Evaluation:
    """The suite from predictions alone (out-of-fold predictions, a model scored elsewhere).

    `y_score`: class probabilities (`proba=True`) or decision values, columns in `labels`
    order; for binary tasks a 1-D score of the second label is accepted.
    """
    return Evaluation(
        kind, y_true, y_pred, y_score, list(labels or []), sample_weight, estimator_name, proba
    )


def _classification_metrics(result: Evaluation, out: dict[str, float]) -> None:
    import numpy as np
    from sklearn import metrics as m

    y, y_pred, labels = result.y_true, result.y_pred, result.labels
    w = {"sample_weight": result.sample_weight}
    single = _is_1d(y) and (not labels or _is_1d(np.asarray(labels)))
    binary = single and len(labels) == 2
    average: dict[str, Any] = (
        {"average": "binary", "pos_label": labels[1]} if binary else {"average": "weighted"}
    )
    _put(out, "accuracy_score", lambda: m.accuracy_score(y, y_pred, **w))
    for metric in ("precision_score", "recall_score", "f1_score"):
        fn: Callable[..., Any] = getattr(m, metric)
        _put(out, metric, functools.partial(fn, y, y_pred, zero_division=0, **average, **w))
    if result.y_score is None or not single or len(labels) < 2:
        return
    score = np.asarray(result.y_score, dtype=float)
    if result.proba and score.ndim == 2:
        # float32 probabilities (XGBoost, Keras) miss 1.0 by ~1e-7 and make sklearn warn
        rows = score / score.sum(axis=1, keepdims=True)
        _put(out, "log_loss", lambda: m.log_loss(y, rows, labels=labels, **w))
    if binary:
        column = score if score.ndim == 1 else score[:, 1]
        _put(out, "roc_auc", lambda: m.roc_auc_score(np.asarray(y) == labels[1], column, **w))
    elif result.proba and score.ndim == 2:
        _put(
            out,
            "roc_auc",
            lambda: m.roc_auc_score(
                y, score, labels=labels, multi_class="ovr", average="weighted", **w
            ),
        )


def _scores(estimator: Any, X: Any, labels: list[Any]) -> tuple[Any, bool]:
    """(class probabilities, True) if the estimator has them, else (decision values, False);
    (None, False) if neither can be had."""
    import numpy as np

    for method in ("predict_proba", "decision_function"):
        if hasattr(estimator, method):
            try:
                score = np.asarray(getattr(estimator, method)(X), dtype=float)
            except Exception as exc:  # e.g. a method only some configurations support
                logger.debug("autotrack: %s failed: %r", method, exc)
                continue
            if score.ndim == 2 and score.shape[1] == 1:
                score = score.ravel()
            if score.ndim == 1 and len(labels) != 2:
                continue
            if score.ndim == 2 and score.shape[1] != len(labels):
                continue
            if np.isfinite(score).all():
                return score, method == "predict_proba"
    return None, False


def _regression_metrics(result: Evaluation, out: dict[str, float]) -> None:
    from sklearn import metrics as m

    y, y_pred = result.y_true, result.y_pred
    w = {"sample_weight": result.sample_weight}
    _put(out, "mean_squared_error", lambda: m.mean_squared_error(y, y_pred, **w))
    if "mean_squared_error" in out:
        out["root_mean_squared_error"] = math.sqrt(out["mean_squared_error"])
    _put(out, "mean_absolute_error", lambda: m.mean_absolute_error(y, y_pred, **w))
    _put(out, "r2_score", lambda: m.r2_score(y, y_pred, **w))


def _clustering_metrics(result: Evaluation, out: dict[str, float]) -> None:
    import numpy as np
    from sklearn import metrics as m

    X, y = result.X, result.y_true
    if result.y_pred is None or not _is_1d(result.y_pred):
        return
    y_pred = np.asarray(result.y_pred).ravel()
    n_clusters = len(set(y_pred.tolist()) - {-1})
    out["n_clusters"] = float(n_clusters)
    if X is not None and 2 <= n_clusters < len(y_pred):
        if len(y_pred) <= SILHOUETTE_MAX_SAMPLES:
            _put(out, "silhouette_score", lambda: m.silhouette_score(X, y_pred))
        else:
            logger.debug(
                "autotrack: silhouette_score skipped for %s: %d samples > %d",
                result.estimator_name,
                len(y_pred),
                SILHOUETTE_MAX_SAMPLES,
            )
        _put(out, "calinski_harabasz_score", lambda: m.calinski_harabasz_score(X, y_pred))
        _put(out, "davies_bouldin_score", lambda: m.davies_bouldin_score(X, y_pred))
    if y is not None and _is_1d(y):
        _put(out, "adjusted_rand_score", lambda: m.adjusted_rand_score(y, y_pred))


def _stock_score(estimator: Any) -> str | None:
    """The metric `estimator.score` computes when it is the stock mixins' (accuracy for
    classifiers, R^2 for regressors), so it is not predicted a second time."""
    from sklearn.base import ClassifierMixin, RegressorMixin

    def unwrapped(method: Any) -> Any:
        return getattr(method, "__wrapped__", method)

    method = unwrapped(getattr(type(estimator), "score", None))
    if method is unwrapped(vars(ClassifierMixin).get("score")):
        return "accuracy_score"
    if method is unwrapped(vars(RegressorMixin).get("score")):
        return "r2_score"
    return None


def _score(estimator: Any, X: Any, y: Any, sample_weight: Any) -> float:
    if sample_weight is not None:
        return estimator.score(X, y, sample_weight=sample_weight)
    return estimator.score(X, y)


def _put(out: dict[str, float], key: str, compute: Callable[[], Any]) -> None:
    """Add one metric; data a metric cannot handle (one class, NaN, multioutput) skips it."""
    try:
        value = float(compute())
    except Exception as exc:  # data-dependent: a metric that does not apply to this data
        logger.debug("autotrack: metric %s skipped: %r", key, exc)
        return
    if math.isfinite(value):
        out[key] = value


def _is_1d(values: Any) -> bool:
    shape = getattr(values, "shape", None)
    if shape is None:
        try:
            import numpy as np

            shape = np.shape(values)
        except Exception:
            return False
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _thin(x: Any, y: Any) -> tuple[list[float], list[float]]:
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) > MAX_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).astype(int))
        x, y = x[keep], y[keep]
    return x.tolist(), y.tolist()


def jsonable(value: Any) -> Any:
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


# -- logging it ----------------------------------------------------------------------------------
#: Plot artifacts, each `<prefix>_<name>.png` with its data in `<prefix>_<name>.json`.
PLOTS = ("confusion_matrix", "roc_curve", "precision_recall_curve", "prediction_error")


def metric_names(evaluation: Evaluation, prefix: str) -> dict[str, float]:
    """`training_accuracy_score`, `X_test_r2_score`, ..."""
    return {f"{prefix}_{key}": value for key, value in evaluation.metrics.items()}


def log_evaluation(
    run: RunHandle, evaluation: Evaluation, prefix: str, *, plots: bool = True
) -> None:
    """On the background worker: compute and log the metrics, then draw the plots and write
    their data. Reads (`get_run`, `search_runs`) and `end_run` wait for it."""
    run.defer(_log_evaluation, run, evaluation, prefix, plots)


def _log_evaluation(run: RunHandle, evaluation: Evaluation, prefix: str, plots: bool) -> None:
    metrics = metric_names(evaluation, prefix)
    if metrics:
        run.log_metrics(metrics)
    if plots and evaluation.kind in ("classifier", "regressor") and evaluation.y_true is not None:
        from autotrack.plots import log_evaluation_plots

        log_evaluation_plots(run, evaluation, prefix)
