"""scikit-learn autologging, end to end on real estimators and tiny bundled datasets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")
np = pytest.importorskip("numpy")

# Imported before autolog() on purpose: these names must be rebound (import-order guarantee).
import importlib  # noqa: E402

from sklearn.metrics import accuracy_score as early_accuracy_score  # noqa: E402
from sklearn.model_selection import cross_val_score as early_cross_val_score  # noqa: E402

import autotrack  # noqa: E402

autolog_module = importlib.import_module("autotrack.autolog")


@pytest.fixture
def autolog():
    """Enable sklearn autologging with options; always disabled again afterwards."""

    def enable(**options):
        autotrack.sklearn.autolog(**options)

    yield enable
    autotrack.sklearn.autolog(disable=True)
    autolog_module._reset_for_tests()


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :8]
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # scaled: solvers converge in a few iterations
    return train_test_split(X, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def only_run(**filters):
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.run_name for r in runs]
    return runs[0]


def artifacts(run_id, path=""):
    return {f.path for f in autotrack.list_artifacts(run_id, path)}


def test_binary_classifier_run(autolog, cancer):
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    autolog()
    model = LogisticRegression(C=0.5, max_iter=2000).fit(X_train, y_train)

    run = only_run()
    assert run.status == "FINISHED"
    assert run.run_name == "LogisticRegression"
    assert run.params["C"] == "0.5"
    assert run.params["max_iter"] == "2000"
    assert run.params["penalty"] == str(model.get_params()["penalty"])
    assert run.tags["estimator_name"] == "LogisticRegression"
    assert run.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.tags["autotrack.versions.sklearn"] == sklearn.__version__
    pred, proba = model.predict(X_train), model.predict_proba(X_train)
    expected = {
        "training_accuracy_score": metrics.accuracy_score(y_train, pred),
        "training_precision_score": metrics.precision_score(y_train, pred),
        "training_recall_score": metrics.recall_score(y_train, pred),
        "training_f1_score": metrics.f1_score(y_train, pred),
        "training_log_loss": metrics.log_loss(y_train, proba),
        "training_roc_auc": metrics.roc_auc_score(y_train, proba[:, 1]),
        "training_score": model.score(X_train, y_train),
    }
    assert run.metrics == pytest.approx(expected)
    names = artifacts(run.run_id)
    for plot in ("confusion_matrix", "roc_curve", "precision_recall_curve"):
        assert {f"training_{plot}.png", f"training_{plot}.json"} <= names
    assert {"model", "datasets", "feature_importances.json", "feature_importances.png"} <= names
    assert "estimator.html" in names
    root = Path(autotrack.artifact_path(run.run_id))
    counts = json.loads((root / "training_confusion_matrix.json").read_text())["counts"]
    assert counts == metrics.confusion_matrix(y_train, pred).tolist()
    importances = json.loads((root / "feature_importances.json").read_text())
    assert importances["source"] == "coef_"
    assert importances["values"] == pytest.approx(model.coef_[0].tolist())

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict_proba(X_train), model.predict_proba(X_train))
    assert run.tags["dataset.train.shape"] == f"{len(X_train)}x8"
    assert run.tags["dataset.train.name"] == "X_train"


def test_results_are_unchanged_by_autolog(autolog, cancer):
    from sklearn.ensemble import RandomForestClassifier

    X_train, X_test, y_train, _ = cancer
    plain = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    autolog()
    logged = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    np.testing.assert_array_equal(plain.predict_proba(X_test), logged.predict_proba(X_test))
    run = only_run()
    importances = json.loads(
        Path(autotrack.artifact_path(run.run_id, "feature_importances.json")).read_text()
    )
    assert importances["source"] == "feature_importances_"
    assert importances["values"] == pytest.approx(logged.feature_importances_.tolist())


def test_multiclass_one_vs_rest_curves_and_weighted_scores(autolog, iris):
    from sklearn import metrics
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    autolog()
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    run = only_run()
    pred = model.predict(X)
    assert run.metrics["training_f1_score"] == pytest.approx(
        metrics.f1_score(y, pred, average="weighted")
    )
    root = Path(autotrack.artifact_path(run.run_id))
    roc = json.loads((root / "training_roc_curve.json").read_text())
    assert [c["label"] for c in roc["curves"]] == ["0", "1", "2"]
    pr = json.loads((root / "training_precision_recall_curve.json").read_text())
    assert len(pr["curves"]) == 3


def test_sample_weight_is_honoured(autolog, cancer):
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    weights = np.where(y_train == 0, 3.0, 1.0)
    autolog()
    model = LogisticRegression(max_iter=2000).fit(X_train, y_train, sample_weight=weights)
    run = only_run()
    expected = metrics.accuracy_score(y_train, model.predict(X_train), sample_weight=weights)
    assert run.metrics["training_accuracy_score"] == pytest.approx(expected)


def test_regressor_run_with_dataframe_names(autolog):
    pd = pytest.importorskip("pandas")
    from sklearn import metrics
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    frame = load_diabetes(as_frame=True)
    X, y = frame.data, frame.target
    autolog()
    model = Ridge(alpha=0.3).fit(X, y)
    run = only_run()
    pred = model.predict(X)
    mse = metrics.mean_squared_error(y, pred)
    assert run.metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert run.metrics["training_root_mean_squared_error"] == pytest.approx(np.sqrt(mse))
    assert run.metrics["training_mean_absolute_error"] == pytest.approx(
        metrics.mean_absolute_error(y, pred)
    )
    assert run.metrics["training_r2_score"] == pytest.approx(metrics.r2_score(y, pred))
    assert {"training_prediction_error.png", "training_prediction_error.json"} <= artifacts(
        run.run_id
    )
    importances = json.loads(
        Path(autotrack.artifact_path(run.run_id, "feature_importances.json")).read_text()
    )
    assert importances["features"] == list(X.columns)
    dataset = json.loads(
        Path(autotrack.artifact_path(run.run_id, "datasets/train.json")).read_text()
    )
    assert dataset["features"]["columns"] == list(X.columns)
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X), pred)
    assert isinstance(X, pd.DataFrame)


def test_clusterers_with_and_without_predict(autolog):
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.datasets import make_blobs
    from sklearn.metrics import silhouette_score

    X, _ = make_blobs(n_samples=90, centers=3, cluster_std=0.6, random_state=0)
    autolog()
    kmeans = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
    labels = DBSCAN(eps=0.8).fit_predict(X)
    runs = {r.run_name: r for r in autotrack.search_runs()}
    assert set(runs) == {"KMeans", "DBSCAN"}
    assert runs["KMeans"].metrics["training_silhouette_score"] == pytest.approx(
        silhouette_score(X, kmeans.labels_)
    )
    assert runs["KMeans"].metrics["training_n_clusters"] == 3
    assert runs["DBSCAN"].metrics["training_n_clusters"] == len(set(labels) - {-1})
    assert "training_calinski_harabasz_score" in runs["DBSCAN"].metrics


def test_standalone_preprocessing_opens_no_run_unless_asked(autolog, cancer):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X_train = cancer[0]
    autolog()
    StandardScaler().fit(X_train)
    StandardScaler().fit_transform(X_train)
    assert autotrack.search_runs() == []
    PCA(n_components=2).fit(X_train)  # a transformer that is a model in its own right
    run = only_run()
    assert run.run_name == "PCA" and run.params["n_components"] == "2"
    autolog(log_preprocessors=True)
    StandardScaler(with_mean=False).fit_transform(X_train)
    scaler = [r for r in autotrack.search_runs() if r.run_name == "StandardScaler"]
    assert len(scaler) == 1 and scaler[0].params["with_mean"] == "False"


def test_pipeline_is_one_run_with_step_params(autolog, cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, _ = cancer
    autolog()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X_train, y_train)
    run = only_run()
    assert run.run_name == "Pipeline"
    assert run.params["logisticregression__C"] == "2.0"
    assert run.params["standardscaler__with_mean"] == "True"
    assert run.params["logisticregression"] == "LogisticRegression(C=2.0)"
    assert run.metrics["training_accuracy_score"] == pytest.approx(pipe.score(X_train, y_train))
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_array_equal(loaded.predict_proba(X_test), pipe.predict_proba(X_test))


def _children(parent_id):
    return [r for r in autotrack.search_runs() if r.parent_run_id == parent_id]


def test_grid_search_parent_and_child_runs(autolog, cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X_train, X_test, y_train, _ = cancer
    autolog()
    grid = {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False], "max_iter": [500]}
    search = GridSearchCV(LogisticRegression(), grid, cv=3).fit(X_train, y_train)

    parents = [r for r in autotrack.search_runs() if r.parent_run_id is None]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.run_name == "GridSearchCV"
    assert parent.params["cv"] == "3"
    assert parent.params["best_C"] == str(search.best_params_["C"])
    assert "estimator__C" not in parent.params  # the seed's untuned params are noise
    assert parent.metrics["best_score"] == pytest.approx(search.best_score_)
    assert parent.metrics["training_accuracy_score"] == pytest.approx(
        search.score(X_train, y_train)
    )
    children = _children(parent.run_id)
    assert len(children) == 6
    results = search.cv_results_
    for child in children:
        i = int(child.tags["candidate_index"])
        assert child.status == "FINISHED"
        assert child.params["C"] == str(results["params"][i]["C"])
        assert child.params["fit_intercept"] == str(results["params"][i]["fit_intercept"])
        assert child.metrics["mean_test_score"] == pytest.approx(results["mean_test_score"][i])
        assert child.metrics["std_test_score"] == pytest.approx(results["std_test_score"][i])
        assert child.metrics["rank_test_score"] == results["rank_test_score"][i]
        assert child.metrics["mean_fit_time"] == pytest.approx(results["mean_fit_time"][i])
        folds = autotrack.get_metric_history(child.run_id, "test_score")
        assert [p.step for p in folds] == [0, 1, 2]
        expected = [results[f"split{k}_test_score"][i] for k in range(3)]
        assert [p.value for p in folds] == pytest.approx(expected)
    best = [c for c in children if c.tags.get("best_candidate") == "true"]
    assert len(best) == 1 and int(best[0].tags["candidate_index"]) == search.best_index_

    table = Path(autotrack.artifact_path(parent.run_id, "cv_results.csv")).read_text()
    rows = list(csv.DictReader(table.splitlines()))
    assert len(rows) == 6 and "split2_test_score" in rows[0]
    loaded = autotrack.load_model(f"runs:/{parent.run_id}/model")
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict(X_test), search.predict(X_test))


@pytest.mark.parametrize("kind", ["random", "halving_grid", "halving_random"])
def test_other_searches_have_child_runs(autolog, cancer, kind):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import (
        HalvingGridSearchCV,
        HalvingRandomSearchCV,
        RandomizedSearchCV,
    )
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = cancer
    grid = {"max_depth": [1, 2, 3, 4], "min_samples_leaf": [1, 5]}
    make = {
        "random": lambda: RandomizedSearchCV(
            DecisionTreeClassifier(random_state=0), grid, n_iter=5, cv=3, random_state=0
        ),
        "halving_grid": lambda: HalvingGridSearchCV(
            DecisionTreeClassifier(random_state=0), grid, cv=3, random_state=0
        ),
        "halving_random": lambda: HalvingRandomSearchCV(
            DecisionTreeClassifier(random_state=0), grid, n_candidates=6, cv=3, random_state=0
        ),
    }
    autolog()
    search = make[kind]().fit(X_train, y_train)
    parent = next(r for r in autotrack.search_runs() if r.parent_run_id is None)
    assert parent.run_name == type(search).__name__
    assert parent.params["best_max_depth"] == str(search.best_params_["max_depth"])
    assert len(_children(parent.run_id)) == len(search.cv_results_["params"])
    assert len(autotrack.search_runs()) == 1 + len(search.cv_results_["params"])


def test_max_tuning_runs_keeps_the_best(autolog, cancer):
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = cancer
    autolog(max_tuning_runs=2)
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3, 4]}, cv=3)
    search.fit(X_train, y_train)
    parent = next(r for r in autotrack.search_runs() if r.parent_run_id is None)
    ranks = sorted(c.metrics["rank_test_score"] for c in _children(parent.run_id))
    assert ranks == sorted(search.cv_results_["rank_test_score"])[:2]


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_search_with_all_cores(autolog, cancer, backend):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X_train, X_test, y_train, _ = cancer
    grid = {"C": [0.1, 1.0, 10.0]}
    plain = GridSearchCV(LogisticRegression(max_iter=2000), grid, cv=3).fit(X_train, y_train)
    autolog()
    with joblib.parallel_backend(backend, n_jobs=-1):
        search = GridSearchCV(LogisticRegression(max_iter=2000), grid, cv=3, n_jobs=-1)
        search.fit(X_train, y_train)
    parent = [r for r in autotrack.search_runs() if r.parent_run_id is None]
    assert [r.run_name for r in parent] == ["GridSearchCV"]  # no run per inner fit
    assert len(_children(parent[0].run_id)) == 3
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(search.predict(X_test), plain.predict(X_test))


def test_cross_validate_is_one_run_with_fold_histories(autolog, cancer):
    from sklearn import model_selection
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    autolog()  # a function imported into a local name before this could not be rebound
    result = model_selection.cross_validate(
        LogisticRegression(max_iter=2000), X_train, y_train, cv=4, scoring=["accuracy", "f1"]
    )
    run = only_run()
    assert run.run_name == "LogisticRegression-cross_validate"
    assert run.tags["sklearn_function"] == "cross_validate"
    assert run.params["cv.cv"] == "4" and run.params["cv.n_splits"] == "4"
    history = autotrack.get_metric_history(run.run_id, "test_accuracy")
    assert [p.step for p in history] == [0, 1, 2, 3]
    assert [p.value for p in history] == pytest.approx(result["test_accuracy"].tolist())
    assert run.metrics["mean_test_f1"] == pytest.approx(result["test_f1"].mean())
    assert run.metrics["std_test_f1"] == pytest.approx(result["test_f1"].std())
    assert "mean_fit_time" in run.metrics


def test_cross_val_score_imported_before_autolog(autolog, iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    autolog()
    scores = early_cross_val_score(DecisionTreeClassifier(random_state=0), X, y, cv=3)
    run = only_run()  # one run, not one per fold
    assert run.metrics["mean_test_score"] == pytest.approx(scores.mean())
    history = autotrack.get_metric_history(run.run_id, "test_score")
    assert [p.value for p in history] == pytest.approx(scores.tolist())


def test_cross_val_predict_logs_out_of_fold_metrics(autolog, iris):
    from sklearn import metrics, model_selection
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    autolog()
    pred = model_selection.cross_val_predict(DecisionTreeClassifier(random_state=0), X, y, cv=3)
    run = only_run()
    assert run.metrics["cv_accuracy_score"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert "cv_confusion_matrix.png" in artifacts(run.run_id)


def test_post_training_metrics_go_to_the_models_run(autolog, cancer):
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = cancer
    autolog()
    model = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    y_pred = model.predict(X_test)
    accuracy = early_accuracy_score(y_test, y_pred)  # imported before autolog()
    f1 = metrics.f1_score(y_test, y_pred)
    macro = metrics.f1_score(y_test, y_pred, average="macro")
    score = model.score(X_test, y_test)
    auc = metrics.roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])  # a view: found

    run = only_run()
    assert run.metrics["accuracy_score_X_test"] == pytest.approx(accuracy)
    assert run.metrics["f1_score_X_test"] == pytest.approx(f1)
    assert run.metrics["f1_score-2_X_test"] == pytest.approx(macro)
    assert run.metrics["LogisticRegression_score_X_test"] == pytest.approx(score)
    assert run.metrics["roc_auc_score_X_test"] == pytest.approx(auc)
    assert run.metrics["X_test_roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    )
    assert run.metrics["X_test_accuracy_score"] == pytest.approx(accuracy)
    names = artifacts(run.run_id)
    assert {"X_test_confusion_matrix.png", "X_test_roc_curve.png", "metric_info.json"} <= names
    info = json.loads(Path(autotrack.artifact_path(run.run_id, "metric_info.json")).read_text())
    assert "average='macro'" in info["f1_score-2_X_test"]
    assert (
        info["roc_auc_score_X_test"]
        == "roc_auc_score(y_true, y_score=<predict_proba(X_test)[...]>)"
    )
    assert run.tags["dataset.X_test.shape"] == f"{len(X_test)}x8"
    # metrics of predictions that are not the model's are not logged
    metrics.accuracy_score(y_test, np.zeros_like(y_test))
    assert set(autotrack.get_run(run.run_id).metrics) == set(run.metrics)


def test_post_training_metrics_can_be_switched_off(autolog, cancer):
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = cancer
    autolog(log_post_training_metrics=False)
    model = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    metrics.accuracy_score(y_test, model.predict(X_test))
    assert not any("X_test" in key for key in only_run().metrics)


def test_disable_restores_originals_and_records_nothing(autolog, cancer):
    import sklearn.metrics
    from sklearn.base import ClassifierMixin
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    own_fit = vars(LogisticRegression)["fit"]
    own_score = vars(ClassifierMixin)["score"]
    accuracy = vars(sklearn.metrics)["accuracy_score"]
    autolog()
    assert vars(LogisticRegression)["fit"] is not own_fit
    assert vars(sklearn.metrics)["accuracy_score"] is not accuracy
    autotrack.sklearn.autolog(disable=True)
    assert vars(LogisticRegression)["fit"] is own_fit
    assert vars(ClassifierMixin)["score"] is own_score
    assert vars(sklearn.metrics)["accuracy_score"] is accuracy
    assert globals()["early_accuracy_score"] is accuracy
    assert "fit" not in vars(StandardScaler) or vars(StandardScaler)["fit"].__module__.startswith(
        "sklearn"
    )
    X_train, _, y_train, _ = cancer
    LogisticRegression(max_iter=2000).fit(X_train, y_train)
    assert autotrack.search_runs() == []


def test_user_error_propagates_and_run_fails(autolog, cancer):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    bad = X_train.copy()
    bad[0, 0] = np.nan
    autolog()
    with pytest.raises(ValueError, match="NaN") as caught:
        LogisticRegression().fit(bad, y_train)
    assert type(caught.value) is ValueError
    run = only_run()
    assert run.status == "FAILED"
    assert run.params["C"] == "1.0"


def test_user_subclass_is_recorded(autolog, cancer):
    from sklearn.linear_model import LogisticRegression

    class Mine(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y, sample_weight)

    X_train, _, y_train, _ = cancer
    autolog()
    Mine(max_iter=2000).fit(X_train, y_train)
    run = only_run()
    assert run.run_name == "Mine"
    assert run.tags["estimator_class"].endswith("test_user_subclass_is_recorded.<locals>.Mine")
    assert "training_accuracy_score" in run.metrics


def test_several_fits_in_one_user_run(autolog, cancer):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, _ = cancer
    autolog()
    with autotrack.start_run() as run:
        first = LogisticRegression(C=0.1, max_iter=2000).fit(X_train, y_train)
        second = LogisticRegression(C=1.0, max_iter=2000).fit(X_train, y_train)
    logged = only_run()
    assert logged.run_id == run.run_id
    assert logged.params["C"] == "0.1"  # write-once: the first fit's value stays
    history = autotrack.get_metric_history(run.run_id, "training_accuracy_score")
    assert len(history) == 2
    for path, model in (("model", first), ("model-2", second)):
        loaded = autotrack.load_model(f"runs:/{run.run_id}/{path}")
        np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))


def test_refitting_the_same_object_keeps_each_runs_model(autolog, cancer):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    autolog()
    model = LogisticRegression(C=0.001, max_iter=2000)
    model.fit(X_train, y_train)
    first_coef = model.coef_.copy()
    model.set_params(C=10.0).fit(X_train, y_train)
    runs = sorted(autotrack.search_runs(), key=lambda r: r.start_time)
    loaded = autotrack.load_model(f"runs:/{runs[0].run_id}/model")
    np.testing.assert_allclose(loaded.coef_, first_coef)


def test_sparse_training_data(autolog):
    sparse = pytest.importorskip("scipy.sparse")
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(0)
    X = sparse.random(200, 50, density=0.05, format="csr", random_state=0)
    y = rng.integers(0, 2, size=200)
    autolog()
    SGDClassifier(random_state=0).fit(X, y)
    run = only_run()
    assert run.tags["dataset.train.shape"] == "200x50"
    data = json.loads(Path(autotrack.artifact_path(run.run_id, "datasets/train.json")).read_text())
    assert data["features"]["nnz"] == X.nnz


def test_concurrent_fits_in_threads_get_their_own_complete_runs(autolog, cancer):
    import threading

    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = cancer
    autolog()
    barrier = threading.Barrier(3)

    def fit(c):
        barrier.wait()
        LogisticRegression(C=c, max_iter=2000).fit(X_train, y_train)

    threads = [threading.Thread(target=fit, args=(c,)) for c in (0.1, 1.0, 10.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = autotrack.search_runs()
    assert sorted(r.params["C"] for r in runs) == ["0.1", "1.0", "10.0"]
    assert all("training_accuracy_score" in r.metrics for r in runs)


def test_text_pipeline_on_a_list_of_documents(autolog):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    docs = ["good movie", "bad movie", "great film", "awful film", "good film", "bad plot"] * 3
    labels = [1, 0, 1, 0, 1, 0] * 3
    autolog()
    pipe = make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(docs, labels)
    run = only_run()
    assert run.params["tfidfvectorizer__lowercase"] == "True"
    assert run.metrics["training_accuracy_score"] == pytest.approx(pipe.score(docs, labels))
    assert run.tags["dataset.train.shape"] == "18"
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert list(loaded.predict(["good film", "awful movie"])) == [1, 0]


def test_metrics_and_plots_are_computed_off_the_callers_thread(autolog, cancer, monkeypatch):
    import threading

    from sklearn.linear_model import LogisticRegression

    from autotrack import evaluation, plots

    where: dict[str, str] = {}
    real_plots, real_metrics = plots.log_evaluation_plots, evaluation._classification_metrics

    def plots_spy(*args, **kwargs):
        where["plots"] = threading.current_thread().name
        return real_plots(*args, **kwargs)

    def metrics_spy(*args, **kwargs):
        where["metrics"] = threading.current_thread().name
        return real_metrics(*args, **kwargs)

    monkeypatch.setattr(plots, "log_evaluation_plots", plots_spy)
    monkeypatch.setattr(evaluation, "_classification_metrics", metrics_spy)
    X_train, _, y_train, _ = cancer
    autolog()
    caller = threading.current_thread().name
    LogisticRegression(max_iter=2000).fit(X_train, y_train)
    assert "training_roc_curve.png" in artifacts(only_run().run_id)
    assert where["plots"] != caller
    assert where["metrics"] != caller


def test_multi_metric_search_without_refit(autolog, cancer):
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = cancer
    autolog(max_tuning_runs=2)
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3, 4]},
        scoring={"f1": "f1", "accuracy": "accuracy"},
        refit=False,
        cv=3,
    ).fit(X_train, y_train)
    parent = next(r for r in autotrack.search_runs() if r.parent_run_id is None)
    assert "model" not in artifacts(parent.run_id)  # refit=False: there is no best estimator
    assert not any(key.startswith("training_") for key in parent.metrics)
    children = _children(parent.run_id)
    # ranked by the first scorer name in order (accuracy) when nothing is refitted
    expected = sorted(search.cv_results_["rank_test_accuracy"])[:2]
    assert sorted(c.metrics["rank_test_accuracy"] for c in children) == expected
    history = autotrack.get_metric_history(children[0].run_id, "test_f1")
    assert [p.step for p in history] == [0, 1, 2]


def test_post_training_regression_metrics_and_plot(autolog):
    from sklearn import metrics
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    X_fit, X_val, y_fit, y_val = X[:300], X[300:], y[:300], y[300:]
    autolog()
    model = Ridge().fit(X_fit, y_fit)
    predicted = model.predict(X_val)
    mse = metrics.mean_squared_error(y_val, predicted)
    run = only_run()
    assert run.metrics["mean_squared_error_X_val"] == pytest.approx(mse)
    assert run.metrics["X_val_r2_score"] == pytest.approx(metrics.r2_score(y_val, predicted))
    assert {"X_val_prediction_error.png", "X_val_prediction_error.json"} <= artifacts(run.run_id)
