"""Searches and cross-validation helpers: what the scikit-learn integration records for
`GridSearchCV` & co. (a child run per candidate, built from `cv_results_` after the search)
and for `cross_validate` & co. (one run, per-fold scores as metric histories, step = fold).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from autotrack import datasets, tracking
from autotrack.entities import Metric
from autotrack.evaluation import log_evaluation, task_kind
from autotrack.integrations import sklearn_record as record
from autotrack.integrations.base import Call, Hooks

if TYPE_CHECKING:
    from autotrack.integrations.sklearn import SklearnConfig


# -- searches ---------------------------------------------------------------------------------
def record_search(call: Call, search: Any) -> None:
    """Queue the search's record: best params and score, `cv_results.csv`, child runs."""
    run = call.run
    config: SklearnConfig = call.config  # type: ignore[assignment]
    assert run is not None
    best = getattr(search, "best_params_", None)
    best_params = {f"best_{k}": record.render(v) for k, v in best.items()} if best else {}
    best_score = getattr(search, "best_score_", None)
    cv_results = dict(getattr(search, "cv_results_", {}) or {})
    base = record.estimator_params(search.estimator, deep=True)
    tags = record.estimator_tags(search.estimator)
    best_index = getattr(search, "best_index_", None)
    choice = (config.max_tuning_runs, getattr(search, "refit", None))  # which children, by rank
    run.defer(_log_search, run, best_params, best_score, cv_results, choice, base, tags, best_index)


def _log_search(
    run: Any,
    best_params: dict[str, str],
    best_score: Any,
    cv_results: dict[str, Any],
    choice: tuple[int | None, Any],
    base: dict[str, str],
    tags: dict[str, str],
    best_index: Any,
) -> None:
    """Background: `best_<param>` params, `best_score`, the `cv_results.csv` table and a
    finished child run per candidate."""
    run.log_params(best_params, keep_existing=True)  # a second search in the user's run
    if isinstance(best_score, (int, float)) and math.isfinite(best_score):
        run.log_metric("best_score", float(best_score))
    if not cv_results:
        return
    run.log_text(record.cv_results_csv(cv_results), "cv_results.csv")
    for candidate in record.candidates(cv_results, *choice):
        child_tags = {**tags, "candidate_index": str(candidate.index)}
        if best_index is not None and candidate.index == best_index:
            child_tags["best_candidate"] = "true"
        child = tracking.create_run(
            run_name=f"{tags['estimator_name']}-candidate-{candidate.index}",
            tags=child_tags,
            parent_run_id=run.run_id,
        )
        params = dict(base)
        params.update({k: record.render(v) for k, v in candidate.params.items()})
        child.log_params(params)
        points = [Metric(k, v, 0, 0) for k, v in candidate.metrics.items()]
        for name, values in candidate.folds.items():
            points += [Metric(name, v, fold, 0) for fold, v in enumerate(values)]
        _log_points(child, points)
        child.end("FINISHED")


def _log_points(run: Any, points: list[Metric]) -> None:
    """One batch of metric points, timestamped now, NaN scores (failed folds) left out."""
    import time

    now = int(time.time() * 1000)
    clean = [Metric(p.key, p.value, p.step, now) for p in points if math.isfinite(p.value)]
    if clean:
        run.store.log_batch(run.run_id, metrics=clean)


# -- cross-validation helpers -------------------------------------------------------------
class ValidationHooks(Hooks):
    """`cross_validate` and friends: one run per call, the folds' scores as histories."""

    def run_name(self, call: Call) -> str | None:
        estimator = call.argument("estimator")
        return f"{type(estimator).__name__}-{call.target.attribute}"

    def before(self, call: Call) -> None:
        run, estimator = call.run, call.argument("estimator")
        assert run is not None
        params = record.estimator_params(estimator, deep=True) if estimator is not None else {}
        for name in ("cv", "scoring", "method", "param_name", "param_range", "n_permutations"):
            bound = call.bound()
            if bound is not None and name in bound.arguments:
                params[f"cv.{name}"] = record.render(bound.arguments[name])
        run.log_params(params, keep_existing=not call.managed)
        tags = record.estimator_tags(estimator) if estimator is not None else {}
        run.set_tags({**tags, "sklearn_function": call.target.attribute})

    def after(self, call: Call, result: Any) -> None:
        run = call.run
        config: SklearnConfig = call.config  # type: ignore[assignment]
        assert run is not None
        X, y = call.argument("X"), call.argument("y")
        function = call.target.attribute
        if function in ("cross_validate", "cross_val_score"):
            folds = record.fold_results(result)
            _log_points(run, _fold_points(folds, record.fold_summary(folds)))
            run.log_param("cv.n_splits", len(next(iter(folds.values()), [])))
        elif function == "cross_val_predict":
            _log_out_of_fold(call, result, y, config)
        elif function in ("learning_curve", "validation_curve"):
            _log_curve(run, function, result, call)
        elif function == "permutation_test_score":
            score, permutation_scores, pvalue = result
            points = [Metric("score", float(score), 0, 0), Metric("pvalue", float(pvalue), 0, 0)]
            points += [Metric("permutation_score", float(v), i, 0)
                       for i, v in enumerate(permutation_scores)]  # fmt: skip
            _log_points(run, points)
        if config.log_datasets and X is not None:
            datasets.log_dataset(run, X, y, "train", record.variable_name(X))


def _fold_points(folds: dict[str, list[float]], summary: dict[str, float]) -> list[Metric]:
    points = [Metric(name, v, fold, 0) for name, values in folds.items()
              for fold, v in enumerate(values)]  # fmt: skip
    return points + [Metric(k, v, 0, 0) for k, v in summary.items()]


def _log_out_of_fold(call: Call, result: Any, y: Any, config: SklearnConfig) -> None:
    """`cross_val_predict`: the metric suite of the out-of-fold predictions, prefix `cv`."""
    import numpy as np

    from autotrack.evaluation import Evaluation, from_predictions

    estimator, run = call.argument("estimator"), call.run
    if y is None or estimator is None or run is None:
        return
    method = call.argument("method", "predict") or "predict"
    kind = task_kind(estimator)
    labels = list(np.unique(np.asarray(y))) if kind == "classifier" else []
    scores = None
    predictions = result
    if method == "predict_proba" and kind == "classifier":
        scores = np.asarray(result)
        predictions = np.asarray(labels)[scores.argmax(axis=1)]
    elif method != "predict":
        return
    evaluation: Evaluation = from_predictions(kind, y, predictions, scores, labels)
    log_evaluation(run, evaluation, "cv", plots=config.log_plots)


def _log_curve(run: Any, function: str, result: Any, call: Call) -> None:
    """Mean/std train and test scores per training size (learning_curve) or per value of the
    varied param (validation_curve); step = the size, or the value's position."""
    import numpy as np

    if function == "learning_curve":
        steps = [int(s) for s in np.asarray(result[0])]
        train, test = result[1], result[2]
    else:
        train, test = result[0], result[1]
        steps = list(range(len(np.asarray(train))))
    points = []
    for name, scores in (("train_score", train), ("test_score", test)):
        array = np.asarray(scores, dtype=float)
        for step, row in zip(steps, array, strict=False):
            points.append(Metric(f"mean_{name}", float(np.nanmean(row)), step, 0))
            points.append(Metric(f"std_{name}", float(np.nanstd(row)), step, 0))
    _log_points(run, points)
