"""XGBoost: `xgboost.train`, `xgboost.cv` and the scikit-learn wrappers' `fit`.

Per-iteration metrics come from XGBoost's own callback API (a `TrainingCallback` added to a
copy of the user's callback list); params from the booster's resolved configuration; the
model is saved as UBJSON. A wrapper's `fit` is one run: its inner `train` is nested, so the
engine does not record it again.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from autotrack.autolog import make_autolog
from autotrack.integrations import boosting
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.integrations.boosting_recorded import recorded
from autotrack.integrations.xgboost_record import (
    ALIASES,
    cv_summary,
    dataset_contexts,
    early_stopping,
    early_stopping_params,
    latest_metrics,
    params_dict,
    resolved_params,
    table_columns,
    wrapper_eval_names,
)

#: Every importance type `Booster.get_score` offers.
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")

#: `train()` / `cv()` arguments recorded as params when passed (data and callbacks are not).
TRAIN_ARGUMENTS = (
    "early_stopping_rounds", "maximize", "custom_metric", "feval", "obj", "xgb_model",
)  # fmt: skip
CV_ARGUMENTS = (
    "num_boost_round", "nfold", "stratified", "metrics", "early_stopping_rounds", "maximize",
    "seed", "shuffle", "custom_metric", "feval", "obj", "folds",
)  # fmt: skip


@dataclass(frozen=True)
class XGBoostConfig(CommonConfig):
    """`importance_types`: which `Booster.get_score` types to log (empty: none)."""

    importance_types: tuple[str, ...] = IMPORTANCE_TYPES


# -- the injected callback -----------------------------------------------------------------------
@functools.cache
def _callback_class(base: type) -> type:
    """A `TrainingCallback` subclass, built once per imported xgboost; every method contained
    (an autotrack bug must never end the user's training)."""
    from autotrack.safety import contained, safe_callback_methods

    class AutotrackCallback(base):  # type: ignore[valid-type, misc]
        """Streams each iteration's evaluation results into the run; never stops training.

        XGBoost stops asking callbacks once one says "stop" (xgboost 1.7 even keeps them in a
        set, in no fixed order), so `after_training`, which every callback gets, records any
        iteration still missing from the evaluation log XGBoost shares with its callbacks.
        """

        def __init__(self, call: Call, stream: boosting.MetricStream) -> None:
            super().__init__()
            self.call = call  # tells containment which integration, run and `silent` apply
            self.stream = stream
            self.evals_log: Any = None
            self.first_epoch = 0
            self.recorded = 0

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if evals_log:
                if self.evals_log is None:
                    self.evals_log, self.first_epoch = evals_log, epoch
                self.stream.add(epoch, latest_metrics(evals_log))
                self.recorded += 1
            return False

        def after_training(self, model: Any) -> Any:
            # XGBoost passes `model=` by keyword and needs it back, whatever happens here
            call = self.call
            with contained(
                "callback:after_training",
                "xgboost",
                silent=bool(getattr(getattr(call, "config", None), "silent", False)),
                run=getattr(call, "run", None),
            ):
                if self.evals_log:
                    logged = len(next(iter(next(iter(self.evals_log.values())).values())))
                    for index in range(self.recorded, logged):
                        step = self.first_epoch + index
                        self.stream.add(step, latest_metrics(self.evals_log, index))
                self.stream.flush()
            return model

    return safe_callback_methods(
        AutotrackCallback, integration="xgboost", passthrough=("before_training", "after_training")
    )


def make_callback(call: Call, stream: boosting.MetricStream) -> Any:
    import xgboost.callback

    return _callback_class(xgboost.callback.TrainingCallback)(call, stream)


def _inject(call: Call) -> Any:
    # first: a callback that says "stop" keeps XGBoost from asking the ones after it
    return boosting.inject(call, make_callback, first=True)


_UNSET = object()


def _inject_into_wrapper(call: Call) -> None:
    """XGBoost >= 2 wrappers take callbacks only from the estimator (`self.callbacks`, read by
    `fit`), so the callback goes there for the duration of the call and `_restore` puts the
    user's own value back; xgboost 1.7's deprecated `fit(callbacks=...)` gets it in the call.
    A single round (random forests, which refuse callbacks) is read from `evals_result()`."""
    estimator = call.instance
    if estimator.get_num_boosting_rounds() <= 1:
        return
    if call.argument("callbacks") is not None:
        _inject(call)
        return
    assert call.run is not None
    stream = call.state["stream"] = boosting.MetricStream(call.run)
    callbacks = boosting.with_callback(estimator.callbacks, make_callback(call, stream), True)
    call.state["user_callbacks"] = vars(estimator).get("callbacks", _UNSET)
    estimator.callbacks = callbacks


def _restore(call: Call) -> None:
    """Put the user's `callbacks` back on the estimator (first thing after the call)."""
    if "user_callbacks" not in call.state:
        return
    previous = call.state.pop("user_callbacks")
    if previous is _UNSET:
        vars(call.instance).pop("callbacks", None)
    else:
        call.instance.callbacks = previous


# -- deferred work (autotrack's background worker) ------------------------------------------------
def _log_importances(run: Any, booster: Any, types: tuple[str, ...]) -> None:
    importances = {kind: booster.get_score(importance_type=kind) for kind in types}
    boosting.log_importances(run, importances, "XGBoost")


def _log_booster(run: Any, booster: Any, dtrain: Any, config: CommonConfig) -> None:
    """The booster, with a signature and example from the first rows of its training DMatrix
    (read back with `get_data`, xgboost >= 1.7)."""
    X = y_pred = None
    if (config.log_input_examples or config.log_model_signatures) and hasattr(dtrain, "get_data"):
        import xgboost

        X = _dmatrix_sample(dtrain)
        y_pred = booster.predict(xgboost.DMatrix(X))
    boosting.log_model(run, booster, X, y_pred, config)


def _dmatrix_sample(dmatrix: Any, rows: int = 5) -> Any:
    """The first rows of a DMatrix, dense, as a DataFrame when it has feature names."""
    data = dmatrix.get_data()[:rows]
    sample = data.toarray() if hasattr(data, "toarray") else data
    names = dmatrix.feature_names
    if names:
        with contextlib.suppress(ImportError):
            import pandas as pd

            return pd.DataFrame(sample, columns=list(names))
    return sample


def _log_dmatrices(run: Any, sets: list[tuple[str, Any]]) -> None:
    """Fingerprint DMatrix contents (read back with `get_data`, xgboost >= 1.7)."""
    from autotrack import datasets

    for name, dmatrix in sets:
        if not hasattr(dmatrix, "get_data"):
            continue
        context = boosting.context_name(name)
        label = dmatrix.get_label()
        fp = datasets.fingerprint(dmatrix.get_data(), label if len(label) else None)
        fp["context"] = context
        run.set_tags(datasets.summary_tags(context, fp))
        run.log_dict(fp, f"datasets/{context}.json")


# -- hooks ---------------------------------------------------------------------------------------
class TrainHooks(Hooks):
    """`xgboost.train(params, dtrain, num_boost_round, evals=..., ...)`."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        evals = call.argument("evals")
        if evals is not None and not isinstance(evals, (list, tuple)):
            evals = list(evals)  # read once here, so XGBoost gets the same pairs
            boosting.set_argument(call, "evals", evals)
        evals = list(evals or [])
        logged = boosting.given_params(params_dict(call.argument("params")))
        logged.update(boosting.call_params(call, ("num_boost_round",), defaults=True))
        logged.update(boosting.call_params(call, TRAIN_ARGUMENTS))
        logged = {**early_stopping_params(call.argument("callbacks")), **logged}
        if evals:
            logged["eval_names"] = boosting.render([name for _, name in evals])
        run.log_params(logged, keep_existing=not call.managed)
        call.state["logged"] = set(logged)
        call.state["callback"] = _inject(call)
        if call.config.log_datasets:
            run.defer(_log_dmatrices, run, dataset_contexts(call.argument("dtrain"), evals))

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        boosting.flush_stream(call)
        resolved = resolved_params(result.save_config())
        run.log_params(
            boosting.resolved_extras(resolved, call.state["logged"], ALIASES), keep_existing=True
        )
        callback = call.state.get("callback")
        history = getattr(callback, "evals_log", None) or {}
        first = getattr(callback, "first_epoch", 0)
        summary = early_stopping(result, history, first, call.argument("callbacks"))
        if summary:
            run.log_metrics(summary)
        config = call.config
        types = tuple(getattr(config, "importance_types", ()))
        if types:
            run.defer(_log_importances, run, result, types)
        if config.log_models:
            run.defer(_log_booster, run, result, call.argument("dtrain"), config)

    def on_error(self, call: Call, exc: BaseException) -> None:
        boosting.flush_stream(call)


class CVHooks(Hooks):
    """`xgboost.cv(params, dtrain, num_boost_round, nfold=..., ...)`: mean and std per
    iteration of every metric, `test-auc-mean` / `test-auc-std`."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        logged = boosting.given_params(params_dict(call.argument("params")))
        logged.update(boosting.call_params(call, CV_ARGUMENTS, defaults=True))
        logged = {**early_stopping_params(call.argument("callbacks")), **logged}
        if not call.argument("metrics"):
            logged.pop("metrics", None)  # the default `()`: the params' eval_metric applies
        run.log_params(logged, keep_existing=not call.managed)
        _inject(call)
        if call.config.log_datasets:
            run.defer(_log_dmatrices, run, [("train", call.argument("dtrain"))])

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        stream = boosting.flush_stream(call)
        ran = (stream.last_step + 1) if stream and stream.last_step is not None else 0
        summary = cv_summary(result, bool(call.argument("early_stopping_rounds")), ran)
        if summary:
            run.log_metrics(summary)
        run.defer(run.log_dict, table_columns(result), "cv_results.json")

    def on_error(self, call: Call, exc: BaseException) -> None:
        boosting.flush_stream(call)


class FitHooks(Hooks):
    """`XGBClassifier.fit(X, y, eval_set=..., ...)` and the other wrappers: one run with the
    wrapper's params, the evaluation history, the scikit-learn metric suite on the last
    evaluation set (else the training data), importances and the wrapper as the model."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        estimator = call.instance
        params = estimator.get_params(deep=False)
        logged = boosting.given_params(params, skip=("callbacks",))
        if params.get("n_estimators") is None:
            logged["n_estimators"] = boosting.render(estimator.get_num_boosting_rounds())
        # fit() arguments of xgboost < 2
        logged.update(boosting.call_params(call, ("early_stopping_rounds", "eval_metric")))
        logged.update(boosting.call_params(call, ("xgb_model",)))  # continued training
        callbacks = [*(params.get("callbacks") or ()), *(call.argument("callbacks") or ())]
        logged = {**early_stopping_params(callbacks), **logged}
        eval_set = call.argument("eval_set")
        if eval_set:
            logged["eval_names"] = boosting.render(wrapper_eval_names(eval_set))
        run.set_tags(boosting.estimator_tags(estimator))
        run.log_params(logged, keep_existing=not call.managed)
        call.state["logged"] = set(logged)
        call.state["unset"] = [k for k, v in params.items() if v is None and k not in logged]
        if call.config.log_datasets:
            X, y = call.argument("X"), call.argument("y")
            sets = [("train", X, y)]
            for name, pair in zip(wrapper_eval_names(eval_set), eval_set or (), strict=False):
                if pair[0] is not X:
                    sets.append((name, pair[0], pair[1]))
            boosting.log_datasets(run, sets)
        _inject_into_wrapper(call)  # last: nothing after it may fail before `after` restores

    def after(self, call: Call, result: Any) -> None:
        _restore(call)
        run = call.run
        assert run is not None
        estimator = call.instance
        booster = estimator.get_booster()
        resolved = resolved_params(booster.save_config())
        state = call.state
        run.log_params(  # derived values: a later call in the same run keeps the first
            boosting.wrapper_resolved(resolved, state["unset"], state["logged"], ALIASES),
            keep_existing=True,
        )
        stream = boosting.flush_stream(call)
        history = _evals_result(estimator)
        if history and (stream is None or not stream.keys):  # nothing streamed (one round)
            for step, points in boosting.history_points(history):
                run.log_metrics(dict(points), step=step)
        callbacks = [*(estimator.callbacks or ()), *(call.argument("callbacks") or ())]
        summary = early_stopping(booster, history, 0, callbacks)
        if summary:
            run.log_metrics(summary)
        eval_set = call.argument("eval_set")
        evaluate_on = boosting.evaluation_set(
            call.argument("X"),
            call.argument("y"),
            call.argument("sample_weight"),
            eval_set,
            wrapper_eval_names(eval_set),
            call.argument("sample_weight_eval_set"),
        )
        boosting.record_wrapper(call, booster, evaluate_on, _log_importances)

    def on_error(self, call: Call, exc: BaseException) -> None:
        _restore(call)
        boosting.flush_stream(call)


def _evals_result(estimator: Any) -> dict[str, dict[str, list[float]]]:
    try:
        return dict(estimator.evals_result())
    except Exception:  # XGBoost raises XGBoostError when no evaluation set was given
        return {}


# -- the integration -----------------------------------------------------------------------------
class XGBoostIntegration(Integration):
    name = "xgboost"
    config_class = XGBoostConfig

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        return boosting.patch_targets(
            module, "training", "XGBModel", TrainHooks(), CVHooks(), FitHooks()
        )


RECORDED = recorded("weight, gain, cover, total_gain, total_cover", "UBJSON `model.ubj`")

INTEGRATION = XGBoostIntegration()
autolog = make_autolog(INTEGRATION)
