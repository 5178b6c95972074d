"""What the LightGBM integration records, as pure functions of what LightGBM hands over (its
evaluation results, the parameter list it writes into every model, `cv`'s columns, the
booster's best iteration), kept apart from the hooks in `autotrack.integrations.lightgbm`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autotrack.integrations import boosting

if TYPE_CHECKING:
    from autotrack.integrations.base import Call

#: Resolved params that are I/O, networking or device plumbing rather than training settings.
_PLUMBING = {
    "data", "valid", "header", "label_column", "weight_column", "group_column", "ignore_column",
    "two_round", "pre_partition", "precise_float_parser", "parser_config_file",
    "saved_feature_importance_type", "num_machines", "local_listen_port", "time_out",
    "machine_list_filename", "machines", "gpu_platform_id", "gpu_device_id",
    "gpu_device_id_list", "gpu_use_dp", "num_gpu", "output_model", "input_model",
    "output_result", "convert_model", "convert_model_language",
}  # fmt: skip


def metrics_of(results: Sequence[Sequence[Any]]) -> Iterator[tuple[str, float]]:
    """Metric points of one iteration's `evaluation_result_list`: `valid_0-auc`; `cv` entries
    carry a standard deviation: `valid-auc-mean`, `valid-auc-stdv` (LightGBM's suffixes).
    LightGBM 3.x names `cv` results `cv_agg` with the set inside the metric name."""
    for item in results:
        data_name, metric_name, value = item[0], item[1], item[2]
        if len(item) < 5:
            yield f"{data_name}-{metric_name}", value
            continue
        if data_name == "cv_agg":
            data_name, _, rest = metric_name.rpartition(" ")
            data_name, metric_name = data_name or "valid", rest
        yield f"{data_name}-{metric_name}-mean", value
        yield f"{data_name}-{metric_name}-stdv", item[4]


def resolved_params(model_text: str) -> dict[str, str]:
    """The `parameters:` section LightGBM writes into every model, defaults included."""
    start = model_text.rfind("\nparameters:\n")
    end = model_text.find("\nend of parameters", start)
    if start < 0 or end < 0:
        return {}
    found = {}
    for line in model_text[start:end].splitlines():
        if line.startswith("[") and line.endswith("]") and ": " in line:
            key, _, value = line[1:-1].partition(": ")
            if key not in _PLUMBING and value != "":
                found[key] = value
    return found


def valid_set_names(
    train_set: Any, valid_sets: Any, valid_names: Any, same: Any = None
) -> list[str]:
    """The names LightGBM gives its evaluation sets: the user's, else `valid_<i>`; the training
    data itself is `training` unless the user named it. `same(i)` says whether entry `i` is the
    training data (default: identity with `train_set`)."""
    if valid_sets is None:
        return []
    if not isinstance(valid_sets, (list, tuple)):
        valid_sets = [valid_sets]
    if isinstance(valid_names, str):
        valid_names = [valid_names]
    names = []
    for i, valid in enumerate(valid_sets):
        is_train = same(i) if same is not None else valid is train_set
        if valid_names is not None and len(valid_names) > i:
            names.append(str(valid_names[i]))
        else:
            names.append("training" if is_train else f"valid_{i}")
    return names


def early_stopping(booster: Any, stream: boosting.MetricStream | None) -> dict[str, float]:
    """Early-stopping results, or {} without early stopping. As LightGBM counts them,
    `best_iteration` and `stopped_iteration` are 1-based numbers of iterations (the latter from
    the stream: the returned booster is cut to its best iteration); `best_score` is the first
    metric on the last evaluation set; every metric at the best iteration is
    `best_<set>-<metric>`."""
    best = int(getattr(booster, "best_iteration", 0) or 0)
    if best <= 0:
        return {}
    scores: Mapping[str, Mapping[str, float]] = getattr(booster, "best_score", {}) or {}
    values = {
        f"best_{data}-{metric}": float(value)
        for data, metrics in scores.items()
        for metric, value in metrics.items()
    }
    best_score = None
    if scores:
        last = list(scores.values())[-1]
        if last:
            best_score = float(next(iter(last.values())))
    stopped = None
    if stream is not None and stream.last_step is not None:
        stopped = stream.last_step + 1
    return boosting.early_stopping_metrics(best, best_score, stopped, values)


def cv_summary(result: Mapping[str, Any], configured: bool, ran: int) -> dict[str, float]:
    """With early stopping `cv` keeps the rows up to the best iteration: the last one is the
    best. `configured`: early stopping was asked for (else it shows only when it cut the rows
    short of the `ran` iterations). Iterations are counted 1-based, as LightGBM does."""
    columns = {k: v for k, v in result.items() if isinstance(v, list)}
    length = min((len(v) for v in columns.values()), default=0)
    if length == 0 or not (configured or length < ran):
        return {}
    best = {}
    for key, values in columns.items():
        data_metric, _, statistic = key.rpartition("-")
        data_name, _, metric = data_metric.rpartition(" ")
        best[f"best_{data_name or 'valid'}-{metric}-{statistic}"] = float(values[length - 1])
    return boosting.early_stopping_metrics(length, None, ran, best)


def aliases(canonical_names: Sequence[str]) -> dict[str, str]:
    """LightGBM's alias -> canonical name table for `canonical_names` (empty if the private
    table moved)."""
    try:
        from lightgbm.basic import _ConfigAliases

        return {
            alias: name
            for name in canonical_names
            for alias in _ConfigAliases.get(name)
            if alias != name
        }
    except Exception:
        return {}


def early_stopping_params(callbacks: Any) -> dict[str, str]:
    """The settings of a LightGBM `early_stopping` callback the user passed (a class in 4.x,
    a closure in 3.x): `early_stopping_rounds`, `first_metric_only`, `early_stopping_min_delta`."""
    for callback in callbacks or ():
        if not _is_early_stopping(callback):
            continue
        if inspect.isfunction(callback):
            settings = dict(inspect.getclosurevars(callback).nonlocals)
        else:
            settings = vars(callback)
        found = {
            "early_stopping_rounds": settings.get("stopping_rounds"),
            "first_metric_only": settings.get("first_metric_only"),
            "early_stopping_min_delta": settings.get("min_delta"),
        }
        return {key: boosting.render(value) for key, value in found.items() if value is not None}
    return {}


def _is_early_stopping(callback: Any) -> bool:
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    return "early_stopping" in name.lower() or "EarlyStopping" in type(callback).__name__


def early_stopping_configured(call: Call) -> bool:
    """Early stopping asked for through params, the 3.x argument, or LightGBM's callback."""
    params = call.argument("params") or {}
    rounds = [params.get(name) for name in aliases(["early_stopping_round"])]
    rounds += [params.get("early_stopping_round"), call.argument("early_stopping_rounds")]
    if any(isinstance(r, int) and r > 0 for r in rounds):
        return True
    return any(_is_early_stopping(cb) for cb in call.argument("callbacks") or ())
