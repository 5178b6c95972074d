"""What the XGBoost integration records, as pure functions of what XGBoost hands over (its
evaluation log, its configuration JSON, `cv`'s table, the booster's attributes), kept apart
from the hooks in `autotrack.integrations.xgboost` so each is easy to test on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from autotrack.integrations import boosting

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
