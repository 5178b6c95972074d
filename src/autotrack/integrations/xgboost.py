"""XGBoost: `xgboost.train`, `xgboost.cv` and the scikit-learn wrappers' `fit`.

Per-iteration metrics come from XGBoost's own callback API (a `TrainingCallback` added to a
copy of the user's callback list); params from the booster's resolved configuration; the
model is saved as UBJSON. A wrapper's `fit` is one run (its inner `train` is nested, so the
engine does not record it separately); the wrapper's evaluation history is logged after fit.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from autotrack.autolog import make_autolog
from autotrack.integrations import boosting
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget

#: Every importance type `Booster.get_score` offers.
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")

#: XGBoost's alias spellings -> the canonical name its configuration uses.
ALIASES = {
    "learning_rate": "eta",
    "reg_alpha": "alpha",
    "reg_lambda": "lambda",
    "min_split_loss": "gamma",
    "random_state": "seed",
    "n_jobs": "nthread",
}

#: Configuration sections that hold model facts or plumbing rather than training params.
_SKIPPED_SECTIONS = {"gbtree_model_param", "hist_train_param"}
_SKIPPED_KEYS = {"updater_seq", "name", "specified_updater", "fail_on_invalid_gpu_id"}


@dataclass(frozen=True)
class XGBoostConfig(CommonConfig):
    """`importance_types`: which `Booster.get_score` types to log (empty: none)."""

    importance_types: tuple[str, ...] = IMPORTANCE_TYPES


# -- what to record (pure) -----------------------------------------------------------------------
def params_dict(params: Any) -> dict[str, Any]:
    """The booster params as a dict; XGBoost also takes a list of pairs, where a repeated key
    (`eval_metric` twice) means a list of values."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    merged: dict[str, Any] = {}
    for key, value in params:
        if key in merged:
            previous = merged[key]
            merged[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            merged[key] = value
    return merged


def latest_metrics(
    evals_log: Mapping[str, Mapping[str, list[Any]]], index: int = -1
) -> Iterator[tuple[str, float]]:
    """Every metric on every evaluation set at position `index` of XGBoost's evaluation log
    (the newest by default): `valid-auc`; `cv` entries are (mean, std) pairs: `test-auc-mean`,
    `test-auc-std`."""
    for data_name, metrics in evals_log.items():
        for metric_name, values in metrics.items():
            last = values[index]
            if isinstance(last, tuple):
                yield f"{data_name}-{metric_name}-mean", last[0]
                yield f"{data_name}-{metric_name}-std", last[1]
            else:
                yield f"{data_name}-{metric_name}", last


def resolved_params(config_json: str) -> dict[str, str]:
    """Every training param of `Booster.save_config()`, defaults included, flattened
    (first occurrence wins), plus `eval_metric` from the configured metrics."""
    learner = json.loads(config_json).get("learner", {})
    found: dict[str, str] = {}

    def walk(node: Any, section: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SKIPPED_SECTIONS:
                    continue
                if isinstance(value, str) and section.endswith("_param"):
                    if key not in _SKIPPED_KEYS:
                        found.setdefault(key, boosting.tidy_number(value))
                else:
                    walk(value, key)
        elif isinstance(node, list):  # xgboost >= 2 lists its updaters
            for item in node:
                walk(item, section)

    walk(learner, "")
    metrics = [m.get("name") for m in learner.get("metrics", []) if isinstance(m, dict)]
    if metrics:
        found.setdefault("eval_metric", ",".join(str(m) for m in metrics))
    return found


def early_stopping(booster: Any, stream: boosting.MetricStream | None) -> dict[str, float]:
    """Early-stopping results of a trained booster, or {} when early stopping did not run.

    `best_iteration` and `stopped_iteration` are 0-based iterations, as XGBoost counts.
    """
    score = booster.attr("best_score")
    if score is None:
        return {}
    best = int(booster.attr("best_iteration"))
    stopped = booster.num_boosted_rounds() - 1
    values = stream.at(best) if stream is not None else {}
    return boosting.early_stopping_metrics(best, float(score), stopped, values)


def history_at(history: Mapping[str, Mapping[str, list[float]]], step: int) -> dict[str, float]:
    """`best_<eval>-<metric>` values at `step` of an `evals_result()` history."""
    return {
        f"best_{data}-{metric}": float(values[step])
        for data, metrics in history.items()
        for metric, values in metrics.items()
        if 0 <= step < len(values)
    }


def cv_summary(result: Any, early_stopping_rounds: Any) -> dict[str, float]:
    """With early stopping, `cv` keeps the rows up to the best iteration: the last row is
    the best one."""
    if not early_stopping_rounds:
        return {}
    columns = _columns(result)
    length = min((len(v) for v in columns.values()), default=0)
    if length == 0:
        return {}
    best = {f"best_{key}": float(values[length - 1]) for key, values in columns.items()}
    return boosting.early_stopping_metrics(length - 1, None, None, best)


def _columns(result: Any) -> dict[str, list[float]]:
    if hasattr(result, "to_dict") and hasattr(result, "columns"):
        return {str(k): list(v.values()) for k, v in result.to_dict().items()}
    return {str(k): list(v) for k, v in dict(result).items()}


def wrapper_eval_names(eval_set: Any) -> list[str]:
    """The names XGBoost's wrappers give their evaluation sets."""
    return [f"validation_{i}" for i in range(len(eval_set or ()))]


# -- the injected callback -----------------------------------------------------------------------
@functools.cache
def _callback_class(base: type) -> type:
    """A `TrainingCallback` subclass, built once per imported xgboost; every method contained
    (an autotrack bug must never end the user's training)."""
    from autotrack.safety import safe_callback_methods

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
            if self.evals_log:
                logged = len(next(iter(next(iter(self.evals_log.values())).values())))
                for index in range(self.recorded, logged):
                    self.stream.add(self.first_epoch + index, latest_metrics(self.evals_log, index))
            self.stream.flush()
            return model

    return safe_callback_methods(
        AutotrackCallback, integration="xgboost", passthrough=("before_training", "after_training")
    )


def make_callback(call: Call, stream: boosting.MetricStream) -> Any:
    import xgboost.callback

    return _callback_class(xgboost.callback.TrainingCallback)(call, stream)


def _inject(call: Call) -> boosting.MetricStream:
    assert call.run is not None
    stream = boosting.MetricStream(call.run)
    callback = make_callback(call, stream)
    callbacks = boosting.with_callback(call.argument("callbacks"), callback, first=True)
    boosting.set_argument(call, "callbacks", callbacks)
    call.state["stream"] = stream
    return stream


_UNSET = object()


def _inject_into_wrapper(call: Call) -> boosting.MetricStream | None:
    """XGBoost >= 2 wrappers take callbacks only from the estimator (`self.callbacks`, read by
    `fit`), so the callback goes there for the duration of the call and `_restore` puts the
    user's own value back; xgboost 1.7's deprecated `fit(callbacks=...)` gets it in the call.
    Random forests refuse callbacks: their one round comes from `evals_result()` instead."""
    estimator = call.instance
    if estimator.get_num_boosting_rounds() <= 1:
        return None
    if call.argument("callbacks") is not None:
        return _inject(call)
    assert call.run is not None
    stream = boosting.MetricStream(call.run)
    callback = make_callback(call, stream)
    call.state["stream"] = stream
    call.state["user_callbacks"] = vars(estimator).get("callbacks", _UNSET)
    estimator.callbacks = boosting.with_callback(estimator.callbacks, callback, first=True)
    return stream


def _restore(call: Call) -> None:
    """Put the user's `callbacks` back on the estimator (first thing after the call)."""
    if "user_callbacks" not in call.state:
        return
    previous = call.state.pop("user_callbacks")
    if previous is _UNSET:
        vars(call.instance).pop("callbacks", None)
    else:
        call.instance.callbacks = previous


def _config(call: Call) -> XGBoostConfig:
    return cast(XGBoostConfig, call.config)


# -- deferred work (autotrack's background worker) ------------------------------------------------
def _importances(booster: Any, types: tuple[str, ...]) -> dict[str, dict[str, float]]:
    return {kind: booster.get_score(importance_type=kind) for kind in types}


def _log_importances(run: Any, booster: Any, types: tuple[str, ...]) -> None:
    boosting.log_importances(run, _importances(booster, types), "XGBoost")


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


def _log_booster(run: Any, booster: Any, dtrain: Any, config: XGBoostConfig) -> None:
    from autotrack.models import log_model

    X = y_pred = None
    if (config.log_input_examples or config.log_model_signatures) and hasattr(dtrain, "get_data"):
        import xgboost

        X = _dmatrix_sample(dtrain)
        y_pred = booster.predict(xgboost.DMatrix(X))
    log_model(
        booster,
        "model",
        run=run,
        X=X,
        y_pred=y_pred,
        log_input_example=config.log_input_examples,
        log_signature=config.log_model_signatures,
    )


def _log_dmatrices(run: Any, sets: list[tuple[str, Any]]) -> None:
    """Fingerprint DMatrix contents (read back with `get_data`, xgboost >= 1.7)."""
    from autotrack import datasets

    for context, dmatrix in sets:
        if not hasattr(dmatrix, "get_data"):
            continue
        label = dmatrix.get_label()
        fp = datasets.fingerprint(dmatrix.get_data(), label if len(label) else None)
        fp["context"] = context
        run.set_tags(datasets.summary_tags(context, fp))
        run.log_dict(fp, f"datasets/{context}.json")


def _dataset_contexts(dtrain: Any, evals: list[tuple[Any, str]]) -> list[tuple[str, Any]]:
    sets = [("train", dtrain)]
    for dmatrix, name in evals:
        if dmatrix is not dtrain:
            sets.append((f"eval_{name}" if name == "train" else str(name), dmatrix))
    return sets


# -- hooks ---------------------------------------------------------------------------------------
class TrainHooks(Hooks):
    """`xgboost.train(params, dtrain, num_boost_round, evals=..., ...)`."""

    def before(self, call: Call) -> None:
        assert call.run is not None
        params = params_dict(call.argument("params"))
        evals = list(call.argument("evals") or [])
        logged = boosting.given_params(params)
        logged["num_boost_round"] = boosting.render(boosting.default_of(call, "num_boost_round"))
        for name in ("early_stopping_rounds", "maximize", "custom_metric", "feval", "obj"):
            value = call.argument(name)
            if value is not None:
                logged[name] = boosting.render(value)
        if call.argument("xgb_model") is not None:
            logged["xgb_model"] = boosting.render(call.argument("xgb_model"))
        if evals:
            logged["eval_names"] = boosting.render([name for _, name in evals])
        call.run.log_params(logged)
        call.state["logged"] = set(logged)
        _inject(call)
        if call.config.log_datasets:
            sets = _dataset_contexts(call.argument("dtrain"), evals)
            call.run.defer(_log_dmatrices, call.run, sets)

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        stream = call.state["stream"]
        stream.flush()
        extras = boosting.resolved_extras(
            resolved_params(result.save_config()), call.state["logged"], ALIASES
        )
        run.log_params(extras)
        summary = early_stopping(result, stream)
        if summary:
            run.log_metrics(summary)
        config = _config(call)
        if config.importance_types:
            run.defer(_log_importances, run, result, tuple(config.importance_types))
        if config.log_models:
            run.defer(_log_booster, run, result, call.argument("dtrain"), config)

    def on_error(self, call: Call, exc: BaseException) -> None:
        stream = call.state.get("stream")
        if stream is not None:
            stream.flush()  # the iterations before the failure stay recorded


class CVHooks(Hooks):
    """`xgboost.cv(params, dtrain, num_boost_round, nfold=..., ...)`: mean and std per
    iteration of every metric, `test-auc-mean` / `test-auc-std`."""

    ARGUMENTS = ("num_boost_round", "nfold", "stratified", "metrics", "early_stopping_rounds",
                 "maximize", "seed", "shuffle", "custom_metric", "feval", "obj")  # fmt: skip

    def before(self, call: Call) -> None:
        assert call.run is not None
        logged = boosting.given_params(params_dict(call.argument("params")))
        for name in self.ARGUMENTS:
            value = boosting.default_of(call, name)
            if value is not None and value != ():
                logged[name] = boosting.render(value)
        if call.argument("folds") is not None:
            logged["folds"] = boosting.render(call.argument("folds"))
        call.run.log_params(logged)
        _inject(call)
        if call.config.log_datasets:
            call.run.defer(_log_dmatrices, call.run, [("train", call.argument("dtrain"))])

    def after(self, call: Call, result: Any) -> None:
        assert call.run is not None
        call.state["stream"].flush()
        summary = cv_summary(result, call.argument("early_stopping_rounds"))
        if summary:
            call.run.log_metrics(summary)
        columns = _columns(result)
        call.run.defer(call.run.log_dict, columns, "cv_results.json")

    def on_error(self, call: Call, exc: BaseException) -> None:
        TrainHooks.on_error(cast(Any, self), call, exc)


class FitHooks(Hooks):
    """`XGBClassifier.fit(X, y, eval_set=..., ...)` and the other wrappers: one run with the
    wrapper's params, the evaluation history, the scikit-learn metric suite on the last
    evaluation set (else the training data), importances and the wrapper as the model."""

    def before(self, call: Call) -> None:
        run = call.run
        assert run is not None
        estimator = call.instance
        logged = boosting.given_params(estimator.get_params(deep=False), skip=("callbacks",))
        if estimator.get_params(deep=False).get("n_estimators") is None:
            logged["n_estimators"] = boosting.render(estimator.get_num_boosting_rounds())
        for name in ("early_stopping_rounds", "eval_metric"):  # fit() arguments in xgboost < 2
            value = call.argument(name)
            if value is not None:
                logged[name] = boosting.render(value)
        eval_set = call.argument("eval_set")
        if eval_set:
            logged["eval_names"] = boosting.render(wrapper_eval_names(eval_set))
        run.set_tags(boosting.estimator_tags(estimator))
        run.log_params(logged)
        call.state["logged"] = set(logged)
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
        extras = boosting.resolved_extras(
            resolved_params(booster.save_config()), call.state["logged"], ALIASES
        )
        run.log_params(extras)
        stream = call.state.get("stream")
        if stream is not None:
            stream.flush()
        history = _evals_result(estimator)
        if history and (stream is None or not stream.history):
            boosting.log_history(run, history)  # nothing was streamed (e.g. a random forest)
        if booster.attr("best_score") is not None:
            best = int(booster.attr("best_iteration"))
            run.log_metrics(
                boosting.early_stopping_metrics(
                    best,
                    float(booster.attr("best_score")),
                    booster.num_boosted_rounds() - 1,
                    history_at(history, best),
                )
            )
        evaluation = _evaluate(call, estimator)
        config = _config(call)
        if config.importance_types:
            run.defer(_log_importances, run, booster, tuple(config.importance_types))
        if config.log_models:
            snapshot = copy.copy(estimator)  # a later refit rebinds the original's booster
            y_pred = getattr(evaluation, "y_pred", None)
            run.defer(_log_wrapper, run, snapshot, call.argument("X"), y_pred, config)

    def on_error(self, call: Call, exc: BaseException) -> None:
        _restore(call)
        TrainHooks.on_error(cast(Any, self), call, exc)


def _evals_result(estimator: Any) -> dict[str, dict[str, list[float]]]:
    try:
        return dict(estimator.evals_result())
    except Exception:  # XGBoost raises XGBoostError when no evaluation set was given
        return {}


def _evaluate(call: Call, estimator: Any) -> Any:
    if not boosting.evaluable(estimator):
        return None
    eval_set = call.argument("eval_set")
    name, X, y, weight = boosting.evaluation_set(
        call.argument("X"),
        call.argument("y"),
        call.argument("sample_weight"),
        eval_set,
        wrapper_eval_names(eval_set),
        call.argument("sample_weight_eval_set"),
    )
    assert call.run is not None
    return boosting.log_wrapper_evaluation(call.run, estimator, name, X, y, weight)


def _log_wrapper(run: Any, estimator: Any, X: Any, y_pred: Any, config: XGBoostConfig) -> None:
    from autotrack.models import log_model

    log_model(
        estimator,
        "model",
        run=run,
        X=X,
        y_pred=y_pred,
        log_input_example=config.log_input_examples,
        log_signature=config.log_model_signatures,
    )


# -- the integration -----------------------------------------------------------------------------
class XGBoostIntegration(Integration):
    name = "xgboost"
    config_class = XGBoostConfig

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        train, cv, fit = TrainHooks(), CVHooks(), FitHooks()
        targets = [PatchTarget(module, "train", train), PatchTarget(module, "cv", cv)]
        training = getattr(module, "training", None)
        if training is not None:
            targets += [PatchTarget(training, "train", train), PatchTarget(training, "cv", cv)]
        wrappers = getattr(module, "sklearn", None)
        if wrappers is not None:
            if hasattr(wrappers, "train"):
                targets.append(PatchTarget(wrappers, "train", train))
            for cls in wrapper_classes(wrappers):
                targets.append(PatchTarget(cls, "fit", fit))
        return targets


def wrapper_classes(module: ModuleType) -> list[type]:
    """Every scikit-learn wrapper class in `module` that defines `fit` itself."""
    base = getattr(module, "XGBModel", None)
    if base is None:
        return []
    return [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, base) and "fit" in vars(cls)
    ]


INTEGRATION = XGBoostIntegration()
autolog = make_autolog(INTEGRATION)
