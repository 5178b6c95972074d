"""XGBoost: `xgboost.train`, `xgboost.cv` and the scikit-learn wrappers' `fit`.

Per-iteration metrics come from XGBoost's own callback API (a `TrainingCallback` added to a
copy of the user's callback list); params from the booster's resolved configuration; the
model is saved as UBJSON. A wrapper's `fit` is one run: its inner `train` is nested, so the
engine does not record it again.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

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
            value = values[index]
            if isinstance(value, tuple):
                yield f"{data_name}-{metric_name}-mean", value[0]
                yield f"{data_name}-{metric_name}-std", value[1]
            else:
                yield f"{data_name}-{metric_name}", value


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
        elif isinstance(node, list):  # updaters: a list in xgboost >= 2, a dict in 1.7
            for item in node:
                walk(item, section)

    walk(learner, "")
    metrics = [m.get("name") for m in learner.get("metrics", []) if isinstance(m, dict)]
    if metrics:
        found.setdefault("eval_metric", ",".join(str(m) for m in metrics))
    return found


def early_stopping(
    booster: Any, history: Mapping[str, Any], first: int = 0, callbacks: Any = None
) -> dict[str, float]:
    """Early-stopping results of a trained booster, or {} when early stopping did not run;
    `history` is the evaluation log whose position 0 is iteration `first` (it runs to the last
    iteration even when `save_best` cut the booster back). As XGBoost counts them,
    `best_iteration` and `stopped_iteration` are 0-based iterations.

    The booster carries the result as attributes, except when xgboost 1.7 cut it back for a
    user's `EarlyStopping(save_best=True)`: then the callback's own count of rounds without
    improvement says where the best iteration was."""
    lengths = [len(values) for metrics in history.values() for values in metrics.values()]
    stopped = first + max(lengths) - 1 if lengths else booster.num_boosted_rounds() - 1
    score = booster.attr("best_score")
    if score is not None:
        best = int(booster.attr("best_iteration"))
        values = boosting.history_at(history, best - first)
        return boosting.early_stopping_metrics(best, float(score), stopped, values)
    stopper = next((cb for cb in callbacks or () if type(cb).__name__ == "EarlyStopping"), None)
    if stopper is None or not lengths or not isinstance(stopper.current_rounds, int):
        return {}
    best = stopped - stopper.current_rounds
    values = boosting.history_at(history, best - first)
    data = getattr(stopper, "data", None) or list(history)[-1]
    metric = getattr(stopper, "metric_name", None) or list(history[data])[-1]
    best_score = values.get(f"best_{data}-{metric}")
    return boosting.early_stopping_metrics(best, best_score, stopped, values)


def cv_summary(result: Any, configured: bool, iterations_run: int) -> dict[str, float]:
    """With early stopping `cv` keeps the rows up to the best iteration: the last row is the
    best one. `configured`: early_stopping_rounds was passed (an EarlyStopping callback shows
    only when it cut the rows short of the `iterations_run`)."""
    columns = table_columns(result)
    length = min((len(v) for v in columns.values()), default=0)
    if length == 0 or not (configured or length < iterations_run):
        return {}
    best = {f"best_{key}": float(values[length - 1]) for key, values in columns.items()}
    return boosting.early_stopping_metrics(length - 1, None, iterations_run - 1, best)


def table_columns(result: Any) -> dict[str, list[float]]:
    """`cv`'s result (a DataFrame, or a dict with `as_pandas=False`) as plain columns."""
    if hasattr(result, "to_dict") and hasattr(result, "columns"):
        return {str(k): [float(v) for v in col.values()] for k, col in result.to_dict().items()}
    return {str(k): [float(v) for v in col] for k, col in dict(result).items()}


def early_stopping_params(callbacks: Any) -> dict[str, str]:
    """The settings of an `EarlyStopping` callback the user passed: `early_stopping_rounds`
    and `early_stopping_<setting>`."""
    for callback in callbacks or ():
        if type(callback).__name__ == "EarlyStopping" and hasattr(callback, "rounds"):
            found = {"early_stopping_rounds": callback.rounds}
            for name in ("save_best", "maximize", "metric_name", "data", "min_delta"):
                value = getattr(callback, name, None)
                if value is not None:
                    found[f"early_stopping_{name}"] = value
            return {key: boosting.render(value) for key, value in found.items()}
    return {}


def wrapper_eval_names(eval_set: Any) -> list[str]:
    """The names XGBoost's wrappers give their evaluation sets."""
    return [f"validation_{i}" for i in range(len(eval_set or ()))]


def dataset_contexts(dtrain: Any, evals: list[tuple[Any, str]]) -> list[tuple[str, Any]]:
    """(context, DMatrix) pairs to fingerprint: `train`, then each other evaluation set."""
    sets = [("train", dtrain)]
    for dmatrix, name in evals:
        if dmatrix is not dtrain:
            sets.append((f"eval_{name}" if name == "train" else str(name), dmatrix))
    return sets


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
        run.log_params(logged)
        call.state["logged"] = set(logged)
        call.state["callback"] = _inject(call)
        if call.config.log_datasets:
            run.defer(_log_dmatrices, run, dataset_contexts(call.argument("dtrain"), evals))

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        assert run is not None
        boosting.flush_stream(call)
        resolved = resolved_params(result.save_config())
        run.log_params(boosting.resolved_extras(resolved, call.state["logged"], ALIASES))
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
        run.log_params(logged)
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
        run.log_params(logged)
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
        run.log_params(
            boosting.wrapper_resolved(resolved, state["unset"], state["logged"], ALIASES)
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
        train, cv, fit = TrainHooks(), CVHooks(), FitHooks()
        targets = [PatchTarget(module, "train", train), PatchTarget(module, "cv", cv)]
        training = getattr(module, "training", None)
        if training is not None:
            targets += [PatchTarget(training, "train", train), PatchTarget(training, "cv", cv)]
        wrappers = getattr(module, "sklearn", None)
        if wrappers is not None:
            if hasattr(wrappers, "train"):  # the `train` XGBModel.fit calls
                targets.append(PatchTarget(wrappers, "train", train))
            targets += [PatchTarget(cls, "fit", fit) for cls in wrapper_classes(wrappers)]
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
