"""LightGBM: `lightgbm.train`, `lightgbm.cv` and the scikit-learn wrappers' `fit`.

Per-iteration metrics come from LightGBM's own callback mechanism (a callable added to a copy
of the user's callback list, ordered before early stopping so the last iteration is kept);
params from the booster's resolved parameter list; the model is saved as LightGBM text.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from autotrack.autolog import make_autolog
from autotrack.integrations import boosting
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.integrations.boosting_recorded import recorded
from autotrack.integrations.lightgbm_record import (
    aliases,
    cv_summary,
    early_stopping,
    early_stopping_configured,
    early_stopping_params,
    metrics_of,
    resolved_params,
    valid_set_names,
)
from autotrack.safety import safe_callback_methods

#: Every importance type `Booster.feature_importance` offers.
IMPORTANCE_TYPES = ("split", "gain")

#: After `record_evaluation` (20), before `early_stopping` (30), which ends training by raising.
CALLBACK_ORDER = 25

#: Call arguments recorded as params when passed (some exist only in LightGBM 3.x).
TRAIN_ARGUMENTS = ("early_stopping_rounds", "feval", "fobj", "init_model", "learning_rates")
CV_ARGUMENTS = (
    "num_boost_round", "nfold", "stratified", "shuffle", "metrics", "seed", "eval_train_metric",
    "early_stopping_rounds", "feval", "fobj", "init_model", "folds",
)  # fmt: skip
FIT_ARGUMENTS = (
    "early_stopping_rounds", "eval_metric", "categorical_feature", "feature_name", "init_model",
)  # fmt: skip


@dataclass(frozen=True)
class LightGBMConfig(CommonConfig):
    """`importance_types`: which `Booster.feature_importance` types to log (empty: none)."""

    importance_types: tuple[str, ...] = IMPORTANCE_TYPES


# -- the injected callback -----------------------------------------------------------------------
class AutotrackCallback:
    """Streams each iteration's evaluation results into the run; never stops training."""

    def __init__(self, call: Call, stream: boosting.MetricStream) -> None:
        self.call = call  # tells containment which integration, run and `silent` apply
        self.stream = stream
        # instance attributes: LightGBM sets `order` with `__dict__.setdefault`
        self.order = CALLBACK_ORDER
        self.before_iteration = False

    def __call__(self, env: Any) -> None:
        results = env.evaluation_result_list
        if results:
            self.stream.add(env.iteration, metrics_of(results))


safe_callback_methods(AutotrackCallback, integration="lightgbm")


def _raw(dataset: Any) -> tuple[Any, Any]:
    """A Dataset's raw data and label while it still has them (LightGBM frees raw data once
    the Dataset is constructed; a file path is not data)."""
    data = getattr(dataset, "data", None)
    if not boosting.in_memory(data) or not hasattr(data, "shape"):
        return None, None
    return data, getattr(dataset, "label", None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# -- deferred work (autotrack's background worker) ------------------------------------------------
def _log_resolved(run: Any, booster: Any, logged: set[str], unset: tuple[str, ...] = ()) -> None:
    """The booster's resolved params (`unset`: wrapper params the user left None)."""
    resolved = resolved_params(booster.model_to_string())
    table = aliases(list(resolved))
    run.log_params(  # derived values: a later call in the same run keeps the first
        boosting.wrapper_resolved(resolved, unset, logged, table), keep_existing=True
    )


def _log_importances(run: Any, booster: Any, types: tuple[str, ...]) -> None:
    names = booster.feature_name()
    importances = {}
    for kind in types:
        values = booster.feature_importance(importance_type=kind).tolist()
        importances[kind] = dict(zip(names, values, strict=True))
    boosting.log_importances(run, importances, "LightGBM")


def _log_booster(run: Any, booster: Any, X: Any, config: CommonConfig) -> None:
    """The booster, with a signature and example from the training data it was given."""
    y_pred = None
    if X is not None:
        y_pred = booster.predict(X.iloc[:5] if hasattr(X, "iloc") else X[:5])
    boosting.log_model(run, booster, X, y_pred, config)


# -- hooks ---------------------------------------------------------------------------------------
class TrainHooks(Hooks):
    """`lightgbm.train(params, train_set, num_boost_round, valid_sets=..., ...)`."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        train_set = call.argument("train_set")
        valid_sets = call.argument("valid_sets")
        names = valid_set_names(train_set, valid_sets, call.argument("valid_names"))
        logged = boosting.given_params(dict(call.argument("params") or {}))
        logged.update(boosting.call_params(call, ("num_boost_round",), defaults=True))
        logged.update(boosting.call_params(call, TRAIN_ARGUMENTS))
        logged = {**early_stopping_params(call.argument("callbacks")), **logged}
        if names:
            logged["eval_names"] = boosting.render(names)
        run.log_params(logged, keep_existing=not call.managed)
        call.state["logged"] = set(logged)
        call.state["train_data"] = _raw(train_set)[0]  # before LightGBM frees it
        boosting.inject(call, AutotrackCallback)
        if call.config.log_datasets:
            sets = [("train", *_raw(train_set))]
            for name, valid in zip(names, _as_list(valid_sets), strict=False):
                if valid is not train_set:
                    sets.append((name, *_raw(valid)))
            boosting.log_datasets(run, sets)

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        stream = boosting.flush_stream(call)
        summary = early_stopping(result, stream)
        if summary:
            run.log_metrics(summary)
        config = call.config
        run.defer(_log_resolved, run, result, call.state["logged"])
        types = tuple(getattr(config, "importance_types", ()))
        if types:
            run.defer(_log_importances, run, result, types)
        if config.log_models:
            run.defer(_log_booster, run, result, call.state["train_data"], config)

    def on_error(self, call: Call, exc: BaseException) -> None:
        boosting.flush_stream(call)


class CVHooks(Hooks):
    """`lightgbm.cv(params, train_set, num_boost_round, nfold=..., ...)`: mean and standard
    deviation per iteration of every metric (`valid-auc-mean`, `valid-auc-stdv`)."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        logged = boosting.given_params(dict(call.argument("params") or {}))
        logged.update(boosting.call_params(call, CV_ARGUMENTS, defaults=True))
        logged = {**early_stopping_params(call.argument("callbacks")), **logged}
        run.log_params(logged, keep_existing=not call.managed)
        boosting.inject(call, AutotrackCallback)
        if call.config.log_datasets:
            data, label = _raw(call.argument("train_set"))
            boosting.log_datasets(run, [("train", data, label)])

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        stream = boosting.flush_stream(call)
        ran = (stream.last_step + 1) if stream and stream.last_step is not None else 0
        summary = cv_summary(result, early_stopping_configured(call), ran)
        if summary:
            run.log_metrics(summary)
        columns = {k: [float(v) for v in col] for k, col in result.items() if isinstance(col, list)}
        run.defer(run.log_dict, columns, "cv_results.json")

    def on_error(self, call: Call, exc: BaseException) -> None:
        boosting.flush_stream(call)


class FitHooks(Hooks):
    """`LGBMClassifier.fit(X, y, eval_set=..., callbacks=...)` and the other wrappers: one run
    with the wrapper's params, per-iteration metrics, the scikit-learn metric suite on the last
    evaluation set (else the training data), importances and the wrapper as the model."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        estimator = call.instance
        params = estimator.get_params(deep=False)
        logged = boosting.given_params(params)
        fit_args = boosting.call_params(call, FIT_ARGUMENTS)
        logged.update({k: v for k, v in fit_args.items() if v != "auto"})
        logged = {**early_stopping_params(call.argument("callbacks")), **logged}
        run.set_tags(boosting.estimator_tags(estimator))
        run.log_params(logged, keep_existing=not call.managed)
        call.state["logged"] = set(logged)
        call.state["unset"] = tuple(k for k, v in params.items() if v is None)
        boosting.inject(call, AutotrackCallback)

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        stream = boosting.flush_stream(call)
        estimator = call.instance
        booster = estimator.booster_
        X, y = call.argument("X"), call.argument("y")
        eval_set = _wrapper_eval_set(call)
        # which entry LightGBM called `training` shows only in its results
        trained = set(getattr(estimator, "evals_result_", None) or ())
        names = _wrapper_eval_names(call, eval_set, trained)
        if names:
            run.log_param("eval_names", boosting.render(names))
        summary = early_stopping(booster, stream)
        if summary:
            run.log_metrics(summary)
        if call.config.log_datasets:
            sets = [("train", X, y)]
            for name, (X_eval, y_eval) in zip(names, eval_set, strict=False):
                if X_eval is not X:
                    sets.append((name, X_eval, y_eval))
            boosting.log_datasets(run, sets)
        run.defer(_log_resolved, run, booster, call.state["logged"], call.state["unset"])
        weights = call.argument("eval_sample_weight")
        sample_weight = call.argument("sample_weight")
        evaluate_on = boosting.evaluation_set(X, y, sample_weight, eval_set, names, weights)
        boosting.record_wrapper(call, booster, evaluate_on, _log_importances)

    def on_error(self, call: Call, exc: BaseException) -> None:
        boosting.flush_stream(call)


def _wrapper_eval_set(call: Call) -> list[tuple[Any, Any]]:
    """The (X, y) evaluation pairs of a wrapper's fit: `eval_set`, or LightGBM >= 4.7's
    `eval_X`/`eval_y` (one of each, or tuples of them)."""
    eval_set = call.argument("eval_set")
    if eval_set is not None:
        return [eval_set] if isinstance(eval_set, tuple) else list(eval_set)
    eval_X, eval_y = call.argument("eval_X"), call.argument("eval_y")
    if eval_X is None or eval_y is None:
        return []
    if isinstance(eval_X, tuple) and isinstance(eval_y, tuple):
        return list(zip(eval_X, eval_y, strict=False))
    return [(eval_X, eval_y)]


def _wrapper_eval_names(
    call: Call, eval_set: list[tuple[Any, Any]], trained: set[str]
) -> list[str]:
    """LightGBM's names for a wrapper's evaluation sets; the training data passed as one is
    `training` when LightGBM recognised it (`trained`: the names in `evals_result_`)."""
    X, y = call.argument("X"), call.argument("y")

    def same(i: int) -> bool:
        return "training" in trained and eval_set[i][0] is X and eval_set[i][1] is y

    return valid_set_names(None, eval_set, call.argument("eval_names"), same)


# -- the integration -----------------------------------------------------------------------------
class LightGBMIntegration(Integration):
    name = "lightgbm"
    config_class = LightGBMConfig

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        return boosting.patch_targets(
            module, "engine", "LGBMModel", TrainHooks(), CVHooks(), FitHooks()
        )


RECORDED = recorded("split, gain", "text `model.txt`")

INTEGRATION = LightGBMIntegration()
autolog = make_autolog(INTEGRATION)
