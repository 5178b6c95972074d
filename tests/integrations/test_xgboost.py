"""XGBoost autologging: native `train`/`cv` and the scikit-learn wrappers, checked against what
XGBoost itself reports (evals_result, best_iteration, predictions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations import xgboost as integration  # noqa: E402
from autotrack.integrations import xgboost_record as record  # noqa: E402

IMPORTANCE_FILES = {
    f"feature_importance_{kind}.{ext}"
    for kind in ("weight", "gain", "cover", "total_gain", "total_cover")
    for ext in ("json", "png")
}


@pytest.fixture(scope="module")
def data():
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def dmatrices(data):
    X_train, X_valid, y_train, y_valid = data
    return xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)


@pytest.fixture
def autolog():
    autotrack.xgboost.autolog()
    yield autotrack.xgboost.autolog
    autotrack.xgboost.autolog(disable=True)


def only_run():
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.run_name for r in runs]
    return runs[0]


def history(run_id, key):
    return [(m.step, m.value) for m in autotrack.get_metric_history(run_id, key)]


def artifacts(run_id, path=""):
    return {f.path.rsplit("/", 1)[-1] for f in autotrack.list_artifacts(run_id, path)}


PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 3}


# -- xgboost.train ---------------------------------------------------------------------------
def test_train_records_params_metrics_importance_and_model(autolog, dmatrices):
    dtrain, dvalid = dmatrices
    evals_result: dict = {}
    booster = xgb.train(
        PARAMS,
        dtrain,
        num_boost_round=15,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=evals_result,
        verbose_eval=False,
    )
    run = only_run()
    assert run.status == "FINISHED"
    assert run.tags["autotrack.integration"] == "xgboost"
    # the user's params as given, the call's arguments, and defaults XGBoost resolved
    assert run.params["objective"] == "binary:logistic"
    assert run.params["max_depth"] == "3"
    assert run.params["eval_metric"] == "['logloss', 'auc']"
    assert run.params["num_boost_round"] == "15"
    assert run.params["eval_names"] == "['train', 'valid']"
    assert run.params["eta"] == "0.3"
    assert run.params["subsample"] == "1"
    assert "learning_rate" not in run.params  # an alias of eta, not logged twice
    # every metric on every evaluation set, every iteration, as XGBoost computed it
    for data_name in ("train", "valid"):
        for metric in ("logloss", "auc"):
            expected = list(enumerate(evals_result[data_name][metric]))
            assert history(run.run_id, f"{data_name}-{metric}") == expected
    assert "best_iteration" not in run.metrics  # no early stopping, no best iteration
    names = artifacts(run.run_id)
    assert names >= IMPORTANCE_FILES
    gain = autotrack.artifact_path(run.run_id, "feature_importance_gain.json")
    with open(gain) as f:
        logged_gain = json.load(f)
    assert logged_gain == pytest.approx(booster.get_score(importance_type="gain"))
    assert list(logged_gain.values()) == sorted(logged_gain.values(), reverse=True)
    assert run.tags["dataset.train.shape"] == f"{dtrain.num_row()}x{dtrain.num_col()}"
    assert "dataset.valid.digest" in run.tags

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_array_equal(loaded.predict(dvalid), booster.predict(dvalid))
    assert {"signature.json", "input_example.json", "model.ubj"} <= artifacts(run.run_id, "model")


def test_train_without_evals_logs_params_and_model_only(autolog, dmatrices):
    dtrain, _ = dmatrices
    xgb.train({"objective": "binary:logistic"}, dtrain, num_boost_round=3)
    run = only_run()
    assert run.params["num_boost_round"] == "3"
    assert "eval_names" not in run.params
    assert run.metrics == {}
    assert "model" in artifacts(run.run_id)


def test_train_early_stopping(autolog, dmatrices):
    dtrain, dvalid = dmatrices
    evals_result: dict = {}
    booster = xgb.train(
        {"objective": "binary:logistic", "eta": 0.9, "eval_metric": "logloss"},
        dtrain,
        num_boost_round=200,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=3,
        evals_result=evals_result,
        verbose_eval=False,
    )
    best = booster.best_iteration
    assert booster.num_boosted_rounds() < 200  # the setup really stops early
    run = only_run()
    assert run.params["early_stopping_rounds"] == "3"
    assert run.metrics["best_iteration"] == best
    assert run.metrics["best_score"] == pytest.approx(booster.best_score)
    assert run.metrics["stopped_iteration"] == booster.num_boosted_rounds() - 1
    assert run.metrics["best_valid-logloss"] == evals_result["valid"]["logloss"][best]
    assert run.metrics["best_train-logloss"] == evals_result["train"]["logloss"][best]
    assert len(history(run.run_id, "valid-logloss")) == booster.num_boosted_rounds()


def test_early_stopping_callback_settings_are_params(autolog, dmatrices):
    dtrain, dvalid = dmatrices
    stop = xgb.callback.EarlyStopping(rounds=4, metric_name="logloss", save_best=True)
    booster = xgb.train(
        {"objective": "binary:logistic", "eta": 0.9, "eval_metric": "logloss"},
        dtrain,
        200,
        evals=[(dvalid, "valid")],
        callbacks=[stop],
        verbose_eval=False,
    )
    run = only_run()
    assert run.params["early_stopping_rounds"] == "4"
    assert run.params["early_stopping_save_best"] == "True"
    assert run.params["early_stopping_metric_name"] == "logloss"
    assert run.metrics["best_iteration"] == booster.best_iteration
    ran = len(history(run.run_id, "valid-logloss"))
    assert booster.num_boosted_rounds() == booster.best_iteration + 1 < ran  # save_best cut it
    assert run.metrics["stopped_iteration"] == ran - 1


def test_custom_metric_is_logged_under_its_own_name(autolog, dmatrices):
    dtrain, dvalid = dmatrices

    def false_positives(predt, dmatrix):
        return "false_positives", float(np.sum((predt > 0.5) & (dmatrix.get_label() == 0)))

    evals_result: dict = {}
    xgb.train(
        {"objective": "binary:logistic"},
        dtrain,
        num_boost_round=5,
        evals=[(dvalid, "valid")],
        custom_metric=false_positives,
        evals_result=evals_result,
        verbose_eval=False,
    )
    run = only_run()
    assert run.params["custom_metric"].endswith("false_positives")
    expected = list(enumerate(evals_result["valid"]["false_positives"]))
    assert history(run.run_id, "valid-false_positives") == expected


def test_cv_logs_mean_and_std_per_iteration(autolog, dmatrices):
    dtrain, _ = dmatrices
    result = xgb.cv(
        {"objective": "binary:logistic", "eval_metric": "auc"},
        dtrain,
        num_boost_round=6,
        nfold=3,
        seed=1,
        as_pandas=False,
    )
    run = only_run()
    assert run.params["nfold"] == "3"
    assert run.params["num_boost_round"] == "6"
    for key in ("test-auc-mean", "test-auc-std", "train-auc-mean", "train-auc-std"):
        assert history(run.run_id, key) == list(enumerate(result[key]))
    assert "cv_results.json" in artifacts(run.run_id)


def test_cv_early_stopping_marks_the_best_iteration(autolog, dmatrices):
    dtrain, _ = dmatrices
    result = xgb.cv(
        {"objective": "binary:logistic", "eta": 0.9, "eval_metric": "logloss"},
        dtrain,
        num_boost_round=200,
        nfold=3,
        early_stopping_rounds=3,
        as_pandas=False,
    )
    rows = len(result["test-logloss-mean"])
    assert rows < 200
    run = only_run()
    assert run.metrics["best_iteration"] == rows - 1
    assert run.metrics["best_test-logloss-mean"] == result["test-logloss-mean"][-1]


# -- scikit-learn wrappers -----------------------------------------------------------------------
def test_classifier_fit_is_one_run_with_curves_evaluation_and_model(autolog, data):
    X_train, X_valid, y_train, y_valid = data
    model = xgb.XGBClassifier(n_estimators=12, max_depth=3, eval_metric="logloss")
    model.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)], verbose=False)
    assert model.callbacks is None  # the user's estimator is as it was

    run = only_run()  # the inner xgboost.train did not open a second run
    assert run.status == "FINISHED"
    assert run.tags["estimator_name"] == "XGBClassifier"
    assert run.params["n_estimators"] == "12"
    assert run.params["max_depth"] == "3"
    assert run.params["eval_names"] == "['validation_0', 'validation_1']"
    # defaults XGBoost resolved, under the wrapper's names where it has them
    assert run.params["learning_rate"] == "0.3" and "eta" not in run.params
    assert run.params["subsample"] == "1"
    evals = model.evals_result()
    for name in ("validation_0", "validation_1"):
        expected = list(enumerate(evals[name]["logloss"]))
        assert history(run.run_id, f"{name}-logloss") == expected
    # the scikit-learn suite on the last evaluation set
    expected_accuracy = accuracy_score(y_valid, model.predict(X_valid))
    assert run.metrics["validation_1_accuracy_score"] == pytest.approx(expected_accuracy)
    assert "validation_1_roc_auc" in run.metrics
    names = artifacts(run.run_id)
    assert {"validation_1_confusion_matrix.png", "validation_1_roc_curve.png"} <= names
    assert names >= IMPORTANCE_FILES
    assert "dataset.train.digest" in run.tags

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X_valid), model.predict_proba(X_valid))


def test_regressor_without_eval_set_is_evaluated_on_training_data(autolog, data):
    X_train, _, y_train, _ = data
    model = xgb.XGBRegressor(n_estimators=5).fit(X_train, y_train.astype(float))
    run = only_run()
    assert run.metrics["training_r2_score"] == pytest.approx(
        r2_score(y_train, model.predict(X_train)), rel=1e-6
    )
    assert not any("-" in key for key in run.metrics)  # no evaluation set, no curves
    assert "training_prediction_error.png" in artifacts(run.run_id)


def test_wrapper_early_stopping(autolog, data):
    X_train, X_valid, y_train, y_valid = data
    model = xgb.XGBClassifier(n_estimators=300, learning_rate=0.9, early_stopping_rounds=3)
    model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    assert model.get_booster().num_boosted_rounds() < 300
    run = only_run()
    best = model.best_iteration
    assert run.params["early_stopping_rounds"] == "3"
    assert run.metrics["best_iteration"] == best
    assert run.metrics["best_score"] == pytest.approx(model.best_score)
    expected = model.evals_result()["validation_0"]["logloss"][best]
    assert run.metrics["best_validation_0-logloss"] == expected


def test_user_callbacks_are_kept_and_never_modified(autolog, dmatrices, data):
    dtrain, dvalid = dmatrices

    class Count(xgb.callback.TrainingCallback):
        def __init__(self):
            super().__init__()
            self.epochs = 0

        def after_iteration(self, model, epoch, evals_log):
            self.epochs += 1
            return False

    counter = Count()
    callbacks = [counter]
    xgb.train({}, dtrain, 4, evals=[(dvalid, "valid")], callbacks=callbacks, verbose_eval=False)
    assert callbacks == [counter] and counter.epochs == 4

    X_train, _, y_train, _ = data
    counter = Count()
    wrapper_callbacks = [counter]
    model = xgb.XGBClassifier(n_estimators=3, callbacks=wrapper_callbacks)
    model.fit(X_train, y_train, eval_set=[(X_train, y_train)], verbose=False)
    assert model.callbacks is wrapper_callbacks and wrapper_callbacks == [counter]
    assert counter.epochs == 3


def test_results_are_unchanged_by_autologging(data):
    X_train, X_valid, y_train, y_valid = data

    def train():
        dtrain = xgb.DMatrix(X_train, label=y_train)
        booster = xgb.train({"subsample": 0.7, "seed": 3}, dtrain, 5, evals=[(dtrain, "t")])
        model = xgb.XGBClassifier(n_estimators=5, subsample=0.7, random_state=3)
        model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
        return booster.predict(xgb.DMatrix(X_valid)), model.predict_proba(X_valid)

    plain = train()
    autotrack.xgboost.autolog()
    try:
        logged = train()
    finally:
        autotrack.xgboost.autolog(disable=True)
    assert len(autotrack.search_runs()) == 2
    for before, after in zip(plain, logged, strict=True):
        np.testing.assert_array_equal(before, after)


def test_user_callback_error_propagates_and_run_fails(autolog, dmatrices, data):
    dtrain, dvalid = dmatrices
    error = ValueError("stop here")

    class Boom(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if epoch == 3:
                raise error
            return False

    with pytest.raises(ValueError) as caught:
        xgb.train({}, dtrain, 10, evals=[(dvalid, "valid")], callbacks=[Boom()], verbose_eval=False)
    assert caught.value is error
    run = only_run()
    assert run.status == "FAILED"
    # iterations 0-2 at least; 3 too when our callback ran before the failing one
    steps = [step for step, _ in history(run.run_id, "valid-rmse")]
    assert steps in ([0, 1, 2], [0, 1, 2, 3])

    X_train, _, y_train, _ = data
    model = xgb.XGBClassifier(n_estimators=10, callbacks=[Boom()])
    with pytest.raises(ValueError) as caught:
        model.fit(X_train, y_train, eval_set=[(X_train, y_train)], verbose=False)
    assert caught.value is error
    assert len(model.callbacks) == 1  # restored after the failure
    statuses = sorted(r.status for r in autotrack.search_runs())
    assert statuses == ["FAILED", "FAILED"]


def test_inside_a_user_run_logs_into_it(autolog, dmatrices):
    dtrain, _ = dmatrices
    with autotrack.start_run() as run:
        xgb.train({}, dtrain, 2)
        assert autotrack.active_run() is run
    assert only_run().params["num_boost_round"] == "2"


def test_disable_restores_the_original_functions(dmatrices):
    originals = (xgb.train, xgb.cv, xgb.sklearn.train, vars(xgb.XGBClassifier)["fit"])
    inherited = "fit" in vars(xgb.XGBRegressor)
    autotrack.xgboost.autolog()
    assert xgb.train is not originals[0]
    autotrack.xgboost.autolog(disable=True)
    assert (xgb.train, xgb.cv, xgb.sklearn.train, vars(xgb.XGBClassifier)["fit"]) == originals
    assert ("fit" in vars(xgb.XGBRegressor)) == inherited
    xgb.train({}, dmatrices[0], 2)
    assert autotrack.search_runs() == []


def test_grid_search_uses_the_sklearn_rules(data):
    from sklearn.model_selection import GridSearchCV

    autotrack.sklearn.autolog()
    autotrack.xgboost.autolog()
    try:
        X_train, _, y_train, _ = data
        search = GridSearchCV(xgb.XGBClassifier(n_estimators=3), {"max_depth": [2, 3]}, cv=2)
        search.fit(X_train, y_train)
    finally:
        autotrack.xgboost.autolog(disable=True)
        autotrack.sklearn.autolog(disable=True)
    runs = autotrack.search_runs()
    parents = [r for r in runs if r.parent_run_id is None]
    assert len(parents) == 1  # no run per fold or per refit
    children = [r for r in runs if r.parent_run_id == parents[0].run_id]
    assert sorted(r.params["max_depth"] for r in children) == ["2", "3"]
    assert len(runs) == 3


def test_multiclass_dataframe_wrapper_names_features_and_classes(autolog):
    pd = pytest.importorskip("pandas")
    X, y = sklearn_datasets.load_iris(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in X.columns]
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2)
    model.fit(X, y, eval_set=[(X, y)], verbose=False)
    run = only_run()
    assert history(run.run_id, "validation_0-mlogloss") == list(
        enumerate(model.evals_result()["validation_0"]["mlogloss"])
    )
    # evaluated on the training data, which is also the only evaluation set
    assert run.metrics["training_accuracy_score"] == pytest.approx(
        accuracy_score(y, model.predict(X))
    )
    with open(autotrack.artifact_path(run.run_id, "feature_importance_weight.json")) as f:
        assert set(json.load(f)) <= set(X.columns)
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model", as_predictor=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(Exception, match="petal_width"):
        loaded.predict(X.drop(columns=["petal_width"]))
    assert isinstance(X, pd.DataFrame)


def test_ranker_and_random_forest(autolog, data):
    X_train, _, y_train, _ = data
    qid = np.repeat(np.arange(len(X_train) // 10 + 1), 10)[: len(X_train)]
    ranker = xgb.XGBRanker(n_estimators=3, eval_metric="ndcg@5")
    ranker.fit(X_train, y_train, qid=qid, eval_set=[(X_train, y_train)], eval_qid=[qid])
    forest = xgb.XGBRFClassifier(n_estimators=5, max_depth=3)
    forest.fit(X_train, y_train, eval_set=[(X_train, y_train)], verbose=False)
    runs = {r.tags["estimator_name"]: r for r in autotrack.search_runs()}
    expected = list(enumerate(ranker.evals_result()["validation_0"]["ndcg@5"]))
    assert history(runs["XGBRanker"].run_id, "validation_0-ndcg@5") == expected
    assert not any(k.startswith("training_") for k in runs["XGBRanker"].metrics)  # no suite
    # a random forest is one boosting round: its evaluation comes from evals_result()
    logloss = forest.evals_result()["validation_0"]["logloss"]
    assert history(runs["XGBRFClassifier"].run_id, "validation_0-logloss") == [(0, logloss[0])]
    assert runs["XGBRFClassifier"].params["n_estimators"] == "5"


def test_autotrack_failure_in_the_callback_never_stops_training(dmatrices, monkeypatch):
    from autotrack.integrations import boosting

    dtrain, dvalid = dmatrices
    plain = xgb.train({"seed": 1}, dtrain, 5, evals=[(dvalid, "valid")], verbose_eval=False)
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")

    def broken(self, step, values):
        raise RuntimeError("autotrack bug")

    monkeypatch.setattr(boosting.MetricStream, "add", broken)
    autotrack.xgboost.autolog()
    try:
        with pytest.warns(UserWarning, match="autotrack bug"):
            booster = xgb.train(
                {"seed": 1}, dtrain, 5, evals=[(dvalid, "valid")], verbose_eval=False
            )
    finally:
        autotrack.xgboost.autolog(disable=True)
    np.testing.assert_array_equal(booster.predict(dvalid), plain.predict(dvalid))
    run = only_run()
    assert run.status == "FINISHED"
    assert "autotrack bug" in run.tags["autotrack.errors"]


def test_ten_thousand_iterations_are_written_in_a_few_batches(autolog, dmatrices, monkeypatch):
    from autotrack.integrations import boosting

    with autotrack.start_run() as run:
        store = run.store
        writes = []
        original = store.add_metric_rows

        def counting(rows):
            rows = list(rows)
            writes.append(len(rows))
            original(rows)

        monkeypatch.setattr(store, "add_metric_rows", counting)
        stream = boosting.MetricStream(run)
        callback = integration.make_callback(None, stream)
        log: dict = {"valid": {"logloss": [], "auc": [], "error": []}}
        for epoch in range(10_000):
            for values in log["valid"].values():
                values.append(1.0 / (epoch + 1))
            callback.after_iteration(None, epoch, log)
        callback.after_training(None)
    assert sum(writes) == 30_000 and len(writes) <= 3
    points = autotrack.get_metric_history(run.run_id, "valid-auc")
    assert [p.step for p in points] == list(range(10_000))


# -- what to record (pure functions) -------------------------------------------------------------
def test_params_dict_merges_repeated_pairs():
    pairs = [("eval_metric", "auc"), ("eval_metric", "logloss"), ("eta", 0.1)]
    assert record.params_dict(pairs) == {"eval_metric": ["auc", "logloss"], "eta": 0.1}
    assert record.params_dict(None) == {}


def test_latest_metrics_names_cv_mean_and_std():
    log = {"train": {"rmse": [3.0, 2.0]}, "test": {"auc": [(0.8, 0.1), (0.9, 0.05)]}}
    assert list(record.latest_metrics(log)) == [
        ("train-rmse", 2.0),
        ("test-auc-mean", 0.9),
        ("test-auc-std", 0.05),
    ]


def test_resolved_params_flatten_the_booster_config(dmatrices):
    booster = xgb.train({"max_depth": 2, "eval_metric": "auc"}, dmatrices[0], 1)
    resolved = record.resolved_params(booster.save_config())
    assert resolved["max_depth"] == "2"
    assert resolved["eval_metric"] == "auc"
    assert resolved["objective"] == "reg:squarederror"
    assert "num_trees" not in resolved  # model facts are not params


def test_render_never_records_memory_addresses(dmatrices):
    from autotrack.integrations.boosting import render

    booster = xgb.train({}, dmatrices[0], 1)
    assert render(booster) == "Booster"
    assert render(np.sum) == "sum"
    assert render(["auc", np.float64(0.5)]) == "['auc', 0.5]"
    assert render(None) == "None"


def test_wrapper_params_keep_the_wrappers_names_and_the_users_values():
    from autotrack.integrations.boosting import wrapper_resolved

    resolved = {"eta": "0.3", "learning_rate": "0.3", "max_depth": "6", "seed": "0", "lambda": "1"}
    unset = ["learning_rate", "max_depth", "random_state"]
    out = wrapper_resolved(resolved, unset, ["reg_lambda"], record.ALIASES)
    # left unset: the library's value under the wrapper's name; set by the user: not repeated
    assert out == {"learning_rate": "0.3", "max_depth": "6", "random_state": "0"}
