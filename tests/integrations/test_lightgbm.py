"""LightGBM autologging: native `train`/`cv` and the scikit-learn wrappers, checked against what
LightGBM itself reports (record_evaluation, best_iteration, best_score, predictions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations import lightgbm_record as record  # noqa: E402

IMPORTANCE_FILES = {
    f"feature_importance_{k}.{e}" for k in ("split", "gain") for e in ("json", "png")
}
QUIET = {"verbose": -1}


def eval_data(*pairs):
    """Evaluation sets for a wrapper's fit: `eval_X`/`eval_y` where LightGBM has them (4.7+),
    else the older `eval_set`."""
    import inspect

    if "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters:
        return {"eval_X": tuple(p[0] for p in pairs), "eval_y": tuple(p[1] for p in pairs)}
    return {"eval_set": list(pairs)}


@pytest.fixture(scope="module")
def data():
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0)


def datasets(data):
    """Fresh Datasets per call: LightGBM binds a Dataset to the params it was built with."""
    X_train, X_valid, y_train, y_valid = data
    train_set = lgb.Dataset(X_train, label=y_train)
    return train_set, lgb.Dataset(X_valid, label=y_valid, reference=train_set)


@pytest.fixture
def autolog():
    autotrack.lightgbm.autolog()
    yield autotrack.lightgbm.autolog
    autotrack.lightgbm.autolog(disable=True)


def only_run():
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.run_name for r in runs]
    return runs[0]


def history(run_id, key):
    return [(m.step, m.value) for m in autotrack.get_metric_history(run_id, key)]


def artifacts(run_id, path=""):
    return {f.path.rsplit("/", 1)[-1] for f in autotrack.list_artifacts(run_id, path)}


PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 7, **QUIET}


# -- lightgbm.train ----------------------------------------------------------------------------
def test_train_records_params_metrics_importance_and_model(autolog, data):
    train_set, valid_set = datasets(data)
    recorded: dict = {}
    booster = lgb.train(
        PARAMS,
        train_set,
        num_boost_round=12,
        valid_sets=[train_set, valid_set],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(recorded)],
    )
    run = only_run()
    assert run.status == "FINISHED"
    assert run.tags["autotrack.integration"] == "lightgbm"
    # the user's params as given, the call's arguments, and defaults LightGBM resolved
    assert run.params["objective"] == "binary"
    assert run.params["num_leaves"] == "7"
    assert run.params["num_boost_round"] == "12"
    assert run.params["eval_names"] == "['train', 'valid']"
    assert run.params["learning_rate"] == "0.1"
    assert run.params["min_data_in_leaf"] == "20"
    assert "local_listen_port" not in run.params  # plumbing, not a training setting
    for data_name in ("train", "valid"):
        for metric in ("binary_logloss", "auc"):
            expected = list(enumerate(recorded[data_name][metric]))
            assert history(run.run_id, f"{data_name}-{metric}") == expected
    assert "best_iteration" not in run.metrics
    assert artifacts(run.run_id) >= IMPORTANCE_FILES
    with open(autotrack.artifact_path(run.run_id, "feature_importance_gain.json")) as f:
        gain = json.load(f)
    expected_gain = dict(
        zip(booster.feature_name(), booster.feature_importance("gain").tolist(), strict=True)
    )
    assert gain == pytest.approx(expected_gain)
    assert "dataset.train.digest" in run.tags and "dataset.valid.digest" in run.tags

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert isinstance(loaded, lgb.Booster)
    X_valid = data[1]
    np.testing.assert_array_equal(loaded.predict(X_valid), booster.predict(X_valid))
    assert {"signature.json", "input_example.json", "model.txt"} <= artifacts(run.run_id, "model")


def test_train_without_valid_sets_logs_params_and_model_only(autolog, data):
    train_set, _ = datasets(data)
    lgb.train({"objective": "binary", **QUIET}, train_set, num_boost_round=3)
    run = only_run()
    assert run.params["num_boost_round"] == "3"
    assert run.metrics == {}
    assert "model" in artifacts(run.run_id)


def test_train_early_stopping(autolog, data):
    train_set, valid_set = datasets(data)
    recorded: dict = {}
    booster = lgb.train(
        {"objective": "binary", "learning_rate": 0.5, **QUIET},
        train_set,
        num_boost_round=300,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(3, verbose=False), lgb.record_evaluation(recorded)],
    )
    ran = len(recorded["valid_0"]["binary_logloss"])
    assert ran < 300  # the setup really stops early
    run = only_run()
    assert run.params["early_stopping_rounds"] == "3"  # read from the callback
    best = booster.best_iteration
    assert run.metrics["best_iteration"] == best
    assert run.metrics["stopped_iteration"] == ran
    expected = booster.best_score["valid_0"]["binary_logloss"]
    assert run.metrics["best_valid_0-binary_logloss"] == pytest.approx(expected)
    assert run.metrics["best_score"] == pytest.approx(expected)
    # the last iteration, whose evaluation triggered the stop, is recorded too
    steps = [step for step, _ in history(run.run_id, "valid_0-binary_logloss")]
    assert steps == list(range(ran))
    assert steps[best - 1] == best - 1


def test_custom_eval_metric_is_logged_under_its_own_name(autolog, data):
    train_set, valid_set = datasets(data)

    def false_positives(preds, eval_data):
        labels = eval_data.get_label()
        return "false_positives", float(np.sum((preds > 0.5) & (labels == 0))), False

    recorded: dict = {}
    lgb.train(
        {"objective": "binary", **QUIET},
        train_set,
        num_boost_round=4,
        valid_sets=[valid_set],
        feval=false_positives,
        callbacks=[lgb.record_evaluation(recorded)],
    )
    run = only_run()
    assert run.params["feval"].endswith("false_positives")
    expected = list(enumerate(recorded["valid_0"]["false_positives"]))
    assert history(run.run_id, "valid_0-false_positives") == expected


def test_cv_logs_mean_and_stdv_per_iteration(autolog, data):
    train_set, _ = datasets(data)
    result = lgb.cv(
        {"objective": "binary", "metric": "auc", **QUIET},
        train_set,
        num_boost_round=5,
        nfold=3,
        seed=1,
    )
    run = only_run()
    assert run.params["nfold"] == "3"
    mean_key = next(k for k in result if k.endswith("auc-mean"))
    stdv_key = next(k for k in result if k.endswith("auc-stdv"))
    assert history(run.run_id, "valid-auc-mean") == list(enumerate(result[mean_key]))
    assert history(run.run_id, "valid-auc-stdv") == list(enumerate(result[stdv_key]))
    assert "cv_results.json" in artifacts(run.run_id)


def test_cv_early_stopping_marks_the_best_iteration(autolog, data):
    train_set, _ = datasets(data)
    result = lgb.cv(
        {"objective": "binary", "learning_rate": 0.5, **QUIET},
        train_set,
        num_boost_round=300,
        nfold=3,
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    mean_key = next(k for k in result if k.endswith("binary_logloss-mean"))
    rows = len(result[mean_key])
    assert rows < 300
    run = only_run()
    assert run.metrics["best_iteration"] == rows
    assert run.metrics["best_valid-binary_logloss-mean"] == pytest.approx(result[mean_key][-1])


# -- scikit-learn wrappers -----------------------------------------------------------------------
def test_classifier_fit_is_one_run_with_curves_evaluation_and_model(autolog, data):
    X_train, X_valid, y_train, y_valid = data
    user_callbacks: list = []
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, **QUIET)
    model.fit(
        X_train,
        y_train,
        **eval_data((X_train, y_train), (X_valid, y_valid)),
        callbacks=user_callbacks,
    )
    assert user_callbacks == []  # the user's list is never modified

    run = only_run()  # the inner lightgbm.train did not open a second run
    assert run.status == "FINISHED"
    assert run.tags["estimator_name"] == "LGBMClassifier"
    assert run.params["n_estimators"] == "10"
    # LightGBM calls the training data `training` when it recognises it (eval_set), else valid_0
    names = list(model.evals_result_)
    assert names in (["training", "valid_1"], ["valid_0", "valid_1"])
    assert run.params["eval_names"] == str(names)
    assert run.params["max_bin"] == "255"  # resolved by LightGBM
    assert run.params["objective"] == "binary"  # left None in the wrapper, resolved
    for name in names:
        expected = list(enumerate(model.evals_result_[name]["binary_logloss"]))
        assert history(run.run_id, f"{name}-binary_logloss") == expected
    expected_accuracy = accuracy_score(y_valid, model.predict(X_valid))
    assert run.metrics["valid_1_accuracy_score"] == pytest.approx(expected_accuracy)
    assert "valid_1_roc_auc" in run.metrics
    names = artifacts(run.run_id)
    assert {"valid_1_confusion_matrix.png", "valid_1_precision_recall_curve.png"} <= names
    assert names >= IMPORTANCE_FILES

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert type(loaded) is lgb.LGBMClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X_valid), model.predict_proba(X_valid))


def test_regressor_without_eval_set_is_evaluated_on_training_data(autolog, data):
    X_train, _, y_train, _ = data
    model = lgb.LGBMRegressor(n_estimators=5, **QUIET).fit(X_train, y_train.astype(float))
    run = only_run()
    assert run.metrics["training_r2_score"] == pytest.approx(
        r2_score(y_train, model.predict(X_train)), rel=1e-6
    )
    assert not any("-" in key for key in run.metrics)
    assert "training_prediction_error.png" in artifacts(run.run_id)


def test_wrapper_early_stopping(autolog, data):
    X_train, X_valid, y_train, y_valid = data
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.5, **QUIET)
    model.fit(
        X_train,
        y_train,
        **eval_data((X_valid, y_valid)),
        eval_names=["holdout"],
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    assert model.booster_.current_iteration() < 300
    run = only_run()
    assert run.params["early_stopping_rounds"] == "3"
    assert run.metrics["best_iteration"] == model.best_iteration_
    expected = model.best_score_["holdout"]["binary_logloss"]
    assert run.metrics["best_holdout-binary_logloss"] == pytest.approx(expected)
    assert "holdout_accuracy_score" in run.metrics


def test_results_are_unchanged_by_autologging(data):
    X_train, X_valid, y_train, y_valid = data
    params = {"objective": "binary", "bagging_fraction": 0.7, "bagging_freq": 1, "seed": 3}

    def train():
        train_set, valid_set = datasets(data)
        booster = lgb.train({**params, **QUIET}, train_set, 5, valid_sets=[valid_set])
        model = lgb.LGBMClassifier(n_estimators=5, subsample=0.7, subsample_freq=1, **QUIET)
        model.fit(X_train, y_train, **eval_data((X_valid, y_valid)))
        return booster.predict(X_valid), model.predict_proba(X_valid)

    plain = train()
    autotrack.lightgbm.autolog()
    try:
        logged = train()
    finally:
        autotrack.lightgbm.autolog(disable=True)
    assert len(autotrack.search_runs()) == 2
    for before, after in zip(plain, logged, strict=True):
        np.testing.assert_array_equal(before, after)


def test_user_callback_error_propagates_and_run_fails(autolog, data):
    error = ValueError("stop here")

    def boom(env):
        if env.iteration == 3:
            raise error

    train_set, valid_set = datasets(data)
    with pytest.raises(ValueError) as caught:
        lgb.train(
            {"objective": "binary", **QUIET},
            train_set,
            10,
            valid_sets=[valid_set],
            callbacks=[boom],
        )
    assert caught.value is error
    run = only_run()
    assert run.status == "FAILED"
    assert [s for s, _ in history(run.run_id, "valid_0-binary_logloss")] == [0, 1, 2]

    X_train, X_valid, y_train, y_valid = data
    model = lgb.LGBMClassifier(n_estimators=10, **QUIET)
    with pytest.raises(ValueError) as caught:
        model.fit(X_train, y_train, **eval_data((X_valid, y_valid)), callbacks=[boom])
    assert caught.value is error
    assert sorted(r.status for r in autotrack.search_runs()) == ["FAILED", "FAILED"]


def test_inside_a_user_run_logs_into_it(autolog, data):
    train_set, _ = datasets(data)
    with autotrack.start_run() as run:
        lgb.train({"objective": "binary", **QUIET}, train_set, 2)
        assert autotrack.active_run() is run
    assert only_run().params["num_boost_round"] == "2"


def test_disable_restores_the_original_functions(data):
    originals = (lgb.train, lgb.cv, lgb.engine.train, lgb.sklearn.train)
    fits = {cls: vars(cls).get("fit") for cls in (lgb.LGBMModel, lgb.LGBMClassifier)}
    autotrack.lightgbm.autolog()
    assert lgb.train is not originals[0]
    autotrack.lightgbm.autolog(disable=True)
    assert (lgb.train, lgb.cv, lgb.engine.train, lgb.sklearn.train) == originals
    assert all(vars(cls).get("fit") is fit for cls, fit in fits.items())
    lgb.train({"objective": "binary", **QUIET}, datasets(data)[0], 2)
    assert autotrack.search_runs() == []


def test_grid_search_uses_the_sklearn_rules(data):
    from sklearn.model_selection import GridSearchCV

    autotrack.sklearn.autolog()
    autotrack.lightgbm.autolog()
    try:
        X_train, _, y_train, _ = data
        estimator = lgb.LGBMClassifier(n_estimators=3, **QUIET)
        GridSearchCV(estimator, {"num_leaves": [3, 7]}, cv=2).fit(X_train, y_train)
    finally:
        autotrack.lightgbm.autolog(disable=True)
        autotrack.sklearn.autolog(disable=True)
    runs = autotrack.search_runs()
    parents = [r for r in runs if r.parent_run_id is None]
    assert len(parents) == 1  # no run per fold or per refit
    children = [r for r in runs if r.parent_run_id == parents[0].run_id]
    assert sorted(r.params["num_leaves"] for r in children) == ["3", "7"]
    assert len(runs) == 3


def test_dataframe_regressor_names_features_in_importance_and_signature(autolog):
    pytest.importorskip("pandas")
    X, y = sklearn_datasets.load_diabetes(return_X_y=True, as_frame=True)
    model = lgb.LGBMRegressor(n_estimators=5, **QUIET).fit(X, y, **eval_data((X, y)))
    run = only_run()
    with open(autotrack.artifact_path(run.run_id, "feature_importance_split.json")) as f:
        assert set(json.load(f)) == set(X.columns)
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model", as_predictor=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(Exception, match="bmi"):
        loaded.predict(X.drop(columns=["bmi"]))
    assert run.tags["dataset.train.shape"] == "442x10"


def test_ranker_logs_its_ranking_metrics(autolog, data):
    X_train, _, y_train, _ = data
    group = [10] * (len(X_train) // 10) + ([len(X_train) % 10] if len(X_train) % 10 else [])
    ranker = lgb.LGBMRanker(n_estimators=3, **QUIET)
    ranker.fit(X_train, y_train, group=group, eval_set=[(X_train, y_train)], eval_group=[group])
    run = only_run()
    key = next(k for k in run.metrics if k.endswith("ndcg@1"))
    data_name = key.split("-")[0]
    expected = list(enumerate(ranker.evals_result_[data_name]["ndcg@1"]))
    assert history(run.run_id, key) == expected
    assert not any(k.startswith(("training_", "valid_0_")) for k in run.metrics)


def test_autotrack_failure_in_the_callback_never_stops_training(data, monkeypatch):
    from autotrack.integrations import boosting

    train_set, valid_set = datasets(data)
    plain = lgb.train({"objective": "binary", **QUIET}, train_set, 5, valid_sets=[valid_set])
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")

    def broken(self, step, values):
        raise RuntimeError("autotrack bug")

    monkeypatch.setattr(boosting.MetricStream, "add", broken)
    autotrack.lightgbm.autolog()
    try:
        train_set, valid_set = datasets(data)
        with pytest.warns(UserWarning, match="autotrack bug"):
            booster = lgb.train(
                {"objective": "binary", **QUIET}, train_set, 5, valid_sets=[valid_set]
            )
    finally:
        autotrack.lightgbm.autolog(disable=True)
    np.testing.assert_array_equal(booster.predict(data[1]), plain.predict(data[1]))
    run = only_run()
    assert run.status == "FINISHED"
    assert "autotrack bug" in run.tags["autotrack.errors"]


def test_an_evaluation_set_name_unfit_for_a_metric_key_is_skipped_with_a_warning(autolog, data):
    train_set, valid_set = datasets(data)
    with pytest.warns(UserWarning, match="hold..out"):
        lgb.train(
            {"objective": "binary", **QUIET},
            train_set,
            3,
            valid_sets=[train_set, valid_set],
            valid_names=["train", "hold..out"],
        )
    run = only_run()
    assert run.status == "FINISHED"
    assert [s for s, _ in history(run.run_id, "train-binary_logloss")] == [0, 1, 2]
    assert not any("hold" in key for key in run.metrics)


# -- what to record (pure functions) -------------------------------------------------------------
def test_metrics_of_names_train_and_cv_results():
    train = [("valid_0", "auc", 0.9, True)]
    assert list(record.metrics_of(train)) == [("valid_0-auc", 0.9)]
    cv4 = [("valid", "auc", 0.9, True, 0.01)]
    cv3 = [("cv_agg", "auc", 0.9, True, 0.01), ("cv_agg", "train auc", 0.95, True, 0.02)]
    assert list(record.metrics_of(cv4)) == [("valid-auc-mean", 0.9), ("valid-auc-stdv", 0.01)]
    assert list(record.metrics_of(cv3)) == [
        ("valid-auc-mean", 0.9),
        ("valid-auc-stdv", 0.01),
        ("train-auc-mean", 0.95),
        ("train-auc-stdv", 0.02),
    ]


def test_valid_set_names_follow_lightgbm():
    train, other = object(), object()
    assert record.valid_set_names(train, [train, other], None) == ["training", "valid_1"]
    assert record.valid_set_names(train, [other], ["holdout"]) == ["holdout"]
    assert record.valid_set_names(train, None, None) == []


def test_resolved_params_read_the_model_text():
    text = "tree\n\nparameters:\n[boosting: gbdt]\n[data: ]\n[num_machines: 1]\n[eta: 0.1]\n"
    text += "end of parameters\n"
    assert record.resolved_params(text) == {"boosting": "gbdt", "eta": "0.1"}
