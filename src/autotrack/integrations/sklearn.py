"""scikit-learn: every estimator's fit, searches with a child run per candidate,
cross-validation helpers, and metrics computed after training.

What is recorded (the engine opens the runs, only the outermost call records):
- `fit` / `fit_transform` / `fit_predict` of every class `all_estimators()` lists (and of
  user subclasses: the patch sits where the method is defined). Params `get_params(deep=True)`
  (searches: `deep=False` plus `best_<param>`), tags `estimator_name`, `estimator_class`;
  `training_<metric>` and the training plots (`autotrack.evaluation`); feature importances;
  the model (`autotrack.models`, skops), `estimator.html`; the training data's fingerprint.
- Searches: `best_score`, `cv_results.csv`, one child run per candidate (`max_tuning_runs`).
- `cross_validate` / `cross_val_score` / `cross_val_predict` / `learning_curve` /
  `validation_curve` / `permutation_test_score`: one run each, per-fold scores as histories.
- After a fit, `sklearn.metrics` calls and `score` on that model's predictions:
  `<metric>_<dataset variable>` in the model's run, plus the full suite for that dataset.

Standalone fits of preprocessing transformers open no run (`log_preprocessors=True` to
record them). Plots, model files, child runs and hashes are written off the caller's thread.

Patching is lazy, one public module at a time (the modules `all_estimators()` crawls): enabling
patches the modules already imported and hooks the others, so it never imports all of sklearn.
"""

from __future__ import annotations

import inspect
import pickle
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from autotrack import datasets
from autotrack.autolog import make_autolog
from autotrack.evaluation import evaluate, log_evaluation, task_kind
from autotrack.integrations import sklearn_record as record
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.integrations.sklearn_post import REGISTRY, MetricHooks, PredictHooks, ScoreHooks
from autotrack.integrations.sklearn_search import ValidationHooks, record_search

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
VALIDATION_FUNCTIONS = (
    "cross_validate", "cross_val_score", "cross_val_predict",
    "learning_curve", "validation_curve", "permutation_test_score",
)  # fmt: skip
_PREDICTION_ARGS = frozenset(
    {"y_pred", "y_score", "y_proba", "y_prob", "probas_pred", "labels_pred", "labels",
     "pred_decision"}
)  # fmt: skip
# Module names `all_estimators()` skips (sklearn.utils.discovery._MODULE_TO_IGNORE).
_NOT_CRAWLED = frozenset(
    {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}
)
_NOT_SCALAR = ("curve", "matrix", "report", "thresholds", "samples", "support", "ratios",
               "completeness_v_measure")  # fmt: skip


@dataclass(frozen=True)
class SklearnConfig(CommonConfig):
    """scikit-learn options on top of the common ones."""

    max_tuning_runs: int | None = None  # child runs per search, best first; None: all
    log_post_training_metrics: bool = True
    log_preprocessors: bool = False  # standalone scaler/imputer/vectoriser fits open a run
    log_plots: bool = True
    serialization_format: str | None = None  # None: skops (pickle only as a fallback)


# -- fit --------------------------------------------------------------------------------------
def _is_search(estimator: Any) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(estimator, BaseSearchCV)


class FitHooks(Hooks):
    """`fit`, `fit_transform`, `fit_predict` of scikit-learn estimators."""

    def __init__(self, integration: SklearnIntegration) -> None:
        self.integration = integration

    def records(self, call: Call) -> bool:
        estimator = call.instance
        if estimator is None or not self.integration.is_known(type(estimator)):
            return False
        config: SklearnConfig = call.config  # type: ignore[assignment]
        return config.log_preprocessors or not record.is_preprocessor(estimator)

    def run_name(self, call: Call) -> str | None:
        return type(call.instance).__name__

    def before(self, call: Call) -> None:
        estimator, run = call.instance, call.run
        assert run is not None
        params = record.estimator_params(estimator, deep=not _is_search(estimator))
        # Rendered now, written by the background worker while the fit runs. In the user's
        # own run, a later fit with other values keeps the first ones (params are write-once).
        run.defer(_log_start, run, params, record.estimator_tags(estimator), not call.managed)

    def after(self, call: Call, result: Any) -> None:
        estimator, run = call.instance, call.run
        config: SklearnConfig = call.config  # type: ignore[assignment]
        assert run is not None
        X, y, weight = record.fit_data(call)
        search = _is_search(estimator)
        # What must see the model and data as they are now, on the caller's thread...
        evaluation = _training_evaluation(estimator, call.target.attribute, result, X, y, weight)
        model = getattr(estimator, "best_estimator_", None) if search else estimator
        snapshot = _snapshot(model) if model is not None else None
        y_head = None
        if evaluation is not None and evaluation.y_pred is not None:
            y_head = record.head(evaluation.y_pred)
        elif call.target.attribute == "fit_transform":
            y_head = record.head(result)
        name = record.variable_name(X) if config.log_datasets and X is not None else None
        REGISTRY.register_model(estimator, run.run_id)
        if search and model is not None:
            REGISTRY.register_model(model, run.run_id)
        # ...then everything else is queued for the background worker, in one go.
        if search:
            record_search(call, estimator)
        if evaluation is not None:
            log_evaluation(run, evaluation, "training", plots=config.log_plots)
        if snapshot is not None:
            path = record.model_path(run.run_id) if config.log_models else None
            run.defer(_log_model, run, snapshot, path, record.head(X), y_head, config)
        if config.log_datasets and X is not None:
            datasets.log_dataset(run, X, y, "train", name)


def _log_start(run: Any, params: dict[str, str], tags: dict[str, str], keep: bool) -> None:
    run.log_params(params, keep_existing=keep)
    run.set_tags(tags)


def _training_evaluation(
    estimator: Any, method: str, result: Any, X: Any, y: Any, weight: Any
) -> Any:
    """The metric suite on the training data, when the estimator can be scored on it."""
    if X is None:
        return None
    kind = task_kind(estimator)
    if kind in ("classifier", "regressor"):
        if y is None or not hasattr(estimator, "predict"):
            return None
        return evaluate(estimator, X, y, sample_weight=weight)
    if kind == "clusterer":
        labels = result if method == "fit_predict" else None
        return evaluate(estimator, X, y, y_pred=labels, labels_are_fit=True)
    if y is not None and hasattr(estimator, "score"):
        return evaluate(estimator, X, y, sample_weight=weight)
    return None


def _snapshot(model: Any) -> Any:
    """The fitted model as pickle bytes taken now, so a later refit of the same object (a loop
    over `set_params(...).fit(...)`) cannot change what this run stores; the live object if it
    cannot be pickled."""
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return model


def _log_model(
    run: Any, snapshot: Any, path: str | None, X_head: Any, y_head: Any, config: SklearnConfig
) -> None:
    """Background: the estimator's HTML diagram, importances (JSON + bar plot) and the model
    directory."""
    from sklearn.utils import estimator_html_repr

    model = pickle.loads(snapshot) if isinstance(snapshot, bytes) else snapshot
    run.log_text(estimator_html_repr(model), "estimator.html")
    found = record.importances(model)
    if found is not None:
        from autotrack import plots

        run.log_dict(found.to_dict(), "feature_importances.json")
        title = f"{type(model).__name__}: {found.source.rstrip('_')}"
        if found.per_class is not None:
            title += " (mean |value| over classes)"
        figure = plots.feature_importance_figure(found.features, found.values, title)
        run.log_figure(figure, "feature_importances.png")
    if path is None:
        return
    from autotrack.models import log_model

    log_model(
        model,
        path,
        run=run,
        X=X_head,
        y_pred=y_head,
        log_input_example=config.log_input_examples,
        log_signature=config.log_model_signatures,
        serialization_format=config.serialization_format,
    )


# -- the integration -------------------------------------------------------------------------
def _defining_class(cls: type, method: str) -> type | None:
    """Where `cls` gets `method` from (None if nowhere, or hidden behind a property, as
    `FeatureAgglomeration.fit_predict` is)."""
    for klass in cls.__mro__:
        if method in vars(klass):
            return None if isinstance(vars(klass)[method], property) else klass
    return None


def metric_functions(metrics: ModuleType) -> list[str]:
    """Public `sklearn.metrics` functions of (truth, predictions) returning one number."""
    names = []
    for name in getattr(metrics, "__all__", ()):
        function = getattr(metrics, name, None)
        if not inspect.isfunction(function) or any(part in name for part in _NOT_SCALAR):
            continue
        try:
            parameters = list(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            continue
        if len(parameters) >= 2 and parameters[1] in _PREDICTION_ARGS:
            names.append(name)
    return names


class SklearnIntegration(Integration):
    name = "sklearn"
    config_class = SklearnConfig

    def __init__(self) -> None:
        self._known: frozenset[type] = frozenset()
        self._known_cache: dict[type, bool] = {}
        self.fit_hooks = FitHooks(self)
        self.validation_hooks = ValidationHooks()
        self.predict_hooks = PredictHooks()
        self.score_hooks = ScoreHooks()
        self.metric_hooks = MetricHooks()

    def is_known(self, cls: type) -> bool:
        """Whether `cls` is (or subclasses) an estimator scikit-learn lists."""
        known = self._known_cache.get(cls)
        if known is None:
            known = self._known_cache[cls] = any(k in self._known for k in cls.__mro__)
        return known

    def submodules(self, module: ModuleType) -> list[str]:
        """The public child modules of a sklearn package, as `all_estimators()` crawls them
        (a directory listing: nothing is imported)."""
        return public_children(module)

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        """The estimators one public module holds (plus the metrics and cross-validation
        functions for `sklearn.metrics` / `sklearn.model_selection`)."""
        classes = estimator_classes(module)
        if module.__name__ == "sklearn.model_selection":
            classes += _halving_searches()
        if classes:
            self._known = self._known | frozenset(classes)
            self._known_cache = {}
        hooks: dict[str, Hooks] = {name: self.fit_hooks for name in FIT_METHODS}
        hooks.update({name: self.predict_hooks for name in PREDICT_METHODS})
        hooks["score"] = self.score_hooks
        found: dict[tuple[type, str], PatchTarget] = {}
        for cls in classes:
            for method, method_hooks in hooks.items():
                owner = _defining_class(cls, method)
                if owner is None or not (owner.__module__ or "").startswith("sklearn"):
                    continue
                found.setdefault((owner, method), PatchTarget(owner, method, method_hooks))
        out = list(found.values())
        if module.__name__ == "sklearn.model_selection":
            for name in VALIDATION_FUNCTIONS:
                if name in vars(module):
                    out.append(PatchTarget(module, name, self.validation_hooks))
        if module.__name__ == "sklearn.metrics":
            for name in metric_functions(module):
                out.append(PatchTarget(module, name, self.metric_hooks))
        return out


def public_children(module: ModuleType) -> list[str]:
    """Names of the public modules directly inside a sklearn package ([] for a module)."""
    path = getattr(module, "__path__", None)
    if path is None:
        return []
    return [
        f"{module.__name__}.{info.name}"
        for info in pkgutil.iter_modules(path)
        if not info.name.startswith("_") and info.name not in _NOT_CRAWLED
    ]


def estimator_classes(module: ModuleType) -> list[type]:
    """The estimators `all_estimators()` finds in this one module: concrete `BaseEstimator`
    subclasses bound to a public name (read from the namespace: lazy attributes stay lazy)."""
    from sklearn.base import BaseEstimator

    found = []
    for name, value in list(vars(module).items()):
        if (
            isinstance(value, type)
            and not name.startswith("_")
            and name != "BaseEstimator"
            and issubclass(value, BaseEstimator)
            and not getattr(value, "__abstractmethods__", None)
        ):
            found.append(value)
    return list(dict.fromkeys(found))


def _halving_searches() -> list[type]:
    """The successive-halving searches, public only behind `sklearn.experimental`."""
    try:
        from sklearn.model_selection import _search_successive_halving as halving

        return [halving.HalvingGridSearchCV, halving.HalvingRandomSearchCV]
    except (ImportError, AttributeError):
        return []


# What a run records: names (`*` = any text, <X> = the held-out data's variable name).
# The README table is generated from this; tests check real runs against it.
RECORDED = {
    "params": {
        "*": "every `get_params(deep=True)` value (Pipeline steps as `step__param`)",
        "best_*": "a search's `best_params_`",
        "cv.*": "cross-validation settings (`cv.cv`, `cv.n_splits`, `cv.scoring`)",
    },
    "metrics": {
        "training_*": "the metric suite on the fit data: accuracy, precision, recall, f1, "
        "log_loss, roc_auc, score (classifiers); mean_squared_error, "
        "root_mean_squared_error, mean_absolute_error, r2_score, score (regressors); "
        "silhouette, calinski_harabasz, davies_bouldin (clusterers)",
        "<X>_*": "the same suite on held-out data, once a sklearn.metrics call scores the "
        "model's predictions on it",
        "*_<X>": "each post-training `sklearn.metrics` call, e.g. `accuracy_score_X_test`",
        "best_score": "a search's best score",
        "mean_*": "a search child's cv_results_ columns, cross_validate means",
        "std_*": "their standard deviations",
        "rank_test_score": "a search child's rank",
        "test_score": "per-fold scores, step = fold (also `test_<scorer>`)",
        "fit_time": "per-fold fit times (cross_validate)",
        "score_time": "per-fold score times (cross_validate)",
    },
    "tags": {
        "estimator_name": "the class name",
        "estimator_class": "its full import path",
        "dataset.<context>.*": "dataset fingerprint: digest, shape, name",
        "sklearn_function": "cross_validate / cross_val_score / cross_val_predict ...",
        "candidate_index": "a search child's row in cv_results_",
        "best_candidate": "`true` on the best child",
    },
    "artifacts": {
        "model/": "the fitted estimator (skops), signature, input example, requirements",
        "<X>_confusion_matrix.*": "`.png` and `.json` counts (`<X>`: `training`, or held-out)",
        "<X>_roc_curve.*": "one-vs-rest for multiclass; `.png` and `.json` curve points",
        "<X>_precision_recall_curve.*": "`.png` and `.json` curve points",
        "<X>_prediction_error.*": "regressors: `.png` and `.json` data",
        "feature_importances.*": "bar plot of the top features (`.png`) and all values (`.json`)",
        "cv_results.csv": "a search's full cv_results_",
        "estimator.html": "scikit-learn's HTML view of the estimator",
        "datasets/<context>.json": "dataset fingerprint",
        "metric_info.json": "the post-training metric calls and their arguments",
    },
}

INTEGRATION = SklearnIntegration()
autolog = make_autolog(INTEGRATION)
