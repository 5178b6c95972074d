"""The shared evaluation / plots / datasets modules, on real scikit-learn models and data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
np = pytest.importorskip("numpy")

import autotrack  # noqa: E402
from autotrack import datasets, evaluation, plots  # noqa: E402


@pytest.fixture(scope="module")
def binary():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :5]
    return LogisticRegression(max_iter=500).fit(X, y), X, y


@pytest.fixture(scope="module")
def multiclass():
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, names), X, names


def test_binary_classifier_metrics_match_sklearn(binary):
    from sklearn import metrics as m

    model, X, y = binary
    result = evaluation.evaluate(model, X, y)
    pred, proba = model.predict(X), model.predict_proba(X)
    assert result.kind == "classifier"
    assert result.metrics["accuracy_score"] == pytest.approx(m.accuracy_score(y, pred))
    assert result.metrics["precision_score"] == pytest.approx(m.precision_score(y, pred))
    assert result.metrics["recall_score"] == pytest.approx(m.recall_score(y, pred))
    assert result.metrics["f1_score"] == pytest.approx(m.f1_score(y, pred))
    assert result.metrics["log_loss"] == pytest.approx(m.log_loss(y, proba))
    assert result.metrics["roc_auc"] == pytest.approx(m.roc_auc_score(y, proba[:, 1]))
    assert result.metrics["score"] == pytest.approx(model.score(X, y))
    assert result.confusion_matrix == m.confusion_matrix(y, pred).tolist()
    assert [c.label for c in result.roc_curves] == ["1"]
    assert result.roc_curves[0].area == pytest.approx(result.metrics["roc_auc"])
    assert len(result.pr_curves) == 1


def test_multiclass_uses_weighted_averages_and_one_vs_rest_curves(multiclass):
    from sklearn import metrics as m

    model, X, y = multiclass
    result = evaluation.evaluate(model, X, y)
    pred = model.predict(X)
    assert result.metrics["f1_score"] == pytest.approx(m.f1_score(y, pred, average="weighted"))
    assert result.metrics["roc_auc"] == pytest.approx(
        m.roc_auc_score(y, model.predict_proba(X), multi_class="ovr", average="weighted")
    )
    assert [c.label for c in result.roc_curves] == ["setosa", "versicolor", "virginica"]
    assert [c.label for c in result.pr_curves] == ["setosa", "versicolor", "virginica"]
    assert np.asarray(result.confusion_matrix).sum() == len(y)


def test_sample_weight_is_honoured(binary):
    from sklearn import metrics as m

    model, X, y = binary
    weights = np.where(y == 1, 5.0, 1.0)
    result = evaluation.evaluate(model, X, y, sample_weight=weights)
    expected = m.accuracy_score(y, model.predict(X), sample_weight=weights)
    assert result.metrics["accuracy_score"] == pytest.approx(expected)
    assert result.metrics["accuracy_score"] != pytest.approx(
        evaluation.evaluate(model, X, y).metrics["accuracy_score"]
    )


def test_regressor_metrics():
    from sklearn import metrics as m
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    result = evaluation.evaluate(model, X, y)
    pred = model.predict(X)
    assert result.kind == "regressor"
    mse = m.mean_squared_error(y, pred)
    assert result.metrics["mean_squared_error"] == pytest.approx(mse)
    assert result.metrics["root_mean_squared_error"] == pytest.approx(np.sqrt(mse))
    assert result.metrics["mean_absolute_error"] == pytest.approx(m.mean_absolute_error(y, pred))
    assert result.metrics["r2_score"] == pytest.approx(m.r2_score(y, pred))
    assert result.metrics["score"] == pytest.approx(model.score(X, y))
    assert result.prediction_points["y_true"][:3] == pytest.approx(y[:3])


def test_clusterer_metrics_use_fit_labels_without_predict():
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    X, truth = make_blobs(n_samples=60, centers=3, random_state=0)
    model = AgglomerativeClustering(n_clusters=3).fit(X)
    result = evaluation.evaluate(model, X, truth, labels_are_fit=True)
    assert result.kind == "clusterer"
    assert result.metrics["n_clusters"] == 3
    assert result.metrics["silhouette_score"] == pytest.approx(silhouette_score(X, model.labels_))
    expected = adjusted_rand_score(truth, model.labels_)
    assert result.metrics["adjusted_rand_score"] == pytest.approx(expected)


def test_log_evaluation_writes_metrics_plots_and_their_data(binary):
    model, X, y = binary
    with autotrack.start_run() as run:
        evaluation.log_evaluation(run, evaluation.evaluate(model, X, y), "training")
    logged = autotrack.get_run(run.run_id)
    assert logged.metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    names = {f.path for f in autotrack.list_artifacts(run.run_id)}
    for plot in ("confusion_matrix", "roc_curve", "precision_recall_curve"):
        assert f"training_{plot}.png" in names
        assert f"training_{plot}.json" in names
    root = Path(autotrack.artifact_path(run.run_id))
    assert (root / "training_roc_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((root / "training_confusion_matrix.json").read_text())
    assert data["labels"] == [0, 1]
    assert np.asarray(data["counts"]).sum() == len(y)


def test_plots_leave_pyplot_alone(multiclass):
    import matplotlib.pyplot as plt

    model, X, y = multiclass
    before = plt.get_fignums()
    result = evaluation.evaluate(model, X, y)
    figure = plots.confusion_matrix_figure(result.confusion_matrix, result.labels, "cm")
    plots.roc_figure(result.roc_curves, "roc")
    plots.feature_importance_figure(["a", "b", "c"], [0.1, -0.5, 0.2], "imp", top=2)
    assert plt.get_fignums() == before
    assert figure.axes[0].get_title() == "cm"
    bars = plots.feature_importance_figure(["a", "b", "c"], [0.1, -0.5, 0.2], "imp", top=2)
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert labels == ["c", "b"]  # the two largest by magnitude, largest on top


# -- dataset fingerprints -----------------------------------------------------------------
def test_fingerprint_equal_data_equal_digest_and_any_change_differs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = rng.integers(0, 2, size=200)
    base = datasets.fingerprint(X, y)["digest"]
    assert datasets.fingerprint(X.copy(), y.copy())["digest"] == base
    assert datasets.fingerprint(np.asfortranarray(X), y)["digest"] == base
    changed = X.copy()
    changed[199, 3] += 1e-12  # the very last value: the hash covers all the data
    assert datasets.fingerprint(changed, y)["digest"] != base
    y2 = y.copy()
    y2[-1] = 1 - y2[-1]
    assert datasets.fingerprint(X, y2)["digest"] != base
    assert datasets.fingerprint(X)["digest"] != base
    assert datasets.fingerprint(X.astype(np.float32), y)["digest"] != base
    assert datasets.fingerprint(X.reshape(400, 2), y)["digest"] != base


def test_fingerprint_pandas_columns_dtypes_and_objects():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "age": [31, 45, 27],
            "city": ["Oslo", "Lima", "Pune"],
            "score": pd.array([1, None, 3], dtype="Int64"),
            "kind": pd.Categorical(["a", "b", "a"]),
        }
    )
    fp = datasets.fingerprint(frame, pd.Series([0, 1, 0], name="label"))
    assert fp["features"]["columns"] == ["age", "city", "score", "kind"]
    assert fp["features"]["dtypes"][0] == "int64"
    assert fp["shape"] == [3, 4]
    assert fp["targets"]["columns"] == ["label"]
    assert datasets.fingerprint(frame.copy())["digest"] == datasets.fingerprint(frame)["digest"]
    other = frame.copy()
    other.loc[2, "city"] = "Pune "
    assert datasets.fingerprint(other)["digest"] != datasets.fingerprint(frame)["digest"]
    renamed = frame.rename(columns={"age": "years"})
    assert datasets.fingerprint(renamed)["digest"] != datasets.fingerprint(frame)["digest"]
    typed = pd.DataFrame({"v": np.array(["1", 1, 1.0], dtype=object)})
    same_text = pd.DataFrame({"v": np.array(["1", "1", "1"], dtype=object)})
    assert datasets.fingerprint(typed)["digest"] != datasets.fingerprint(same_text)["digest"]


def test_fingerprint_sparse_without_densifying(monkeypatch):
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.random(1000, 500, density=0.01, format="csr", random_state=0)

    def refuse(*_a, **_k):
        raise AssertionError("densified")

    fp = datasets.fingerprint(matrix)
    monkeypatch.setattr(type(matrix), "toarray", refuse)
    monkeypatch.setattr(type(matrix), "todense", refuse)
    coo = matrix.tocoo()
    assert datasets.fingerprint(matrix)["digest"] == fp["digest"]
    assert datasets.fingerprint(coo.tocsr())["digest"] == fp["digest"]
    wide = matrix.copy()
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    assert datasets.fingerprint(wide)["digest"] == fp["digest"]
    changed = matrix.copy()
    changed.data[-1] += 1.0
    assert datasets.fingerprint(changed)["digest"] != fp["digest"]
    assert fp["features"]["nnz"] == matrix.nnz


def test_log_dataset_records_tags_and_json():
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    with autotrack.start_run() as first:
        datasets.log_dataset(first, X, y, name="X")
    with autotrack.start_run() as second:
        datasets.log_dataset(second, X.copy(), y.copy())
    with autotrack.start_run() as third:
        datasets.log_dataset(third, X + 1, y)
    tags = [autotrack.get_run(r.run_id).tags for r in (first, second, third)]
    assert tags[0]["dataset.train.digest"] == tags[1]["dataset.train.digest"]
    assert tags[0]["dataset.train.digest"] != tags[2]["dataset.train.digest"]
    assert tags[0]["dataset.train.shape"] == "4x3"
    assert tags[0]["dataset.train.name"] == "X"
    data = json.loads(
        Path(autotrack.artifact_path(first.run_id, "datasets/train.json")).read_text()
    )
    assert data["digest"] == tags[0]["dataset.train.digest"]
    assert data["targets"]["shape"] == [4]


# -- what the sklearn integration records (pure functions) ---------------------------------
def test_params_are_rendered_readably_and_cut_when_huge():
    from sklearn.linear_model import LogisticRegression

    from autotrack.integrations import sklearn_record as record

    assert record.render(0.5) == "0.5"
    assert record.render(None) == "None"
    assert record.render(LogisticRegression(C=2.0)) == "LogisticRegression(C=2.0)"
    assert record.render(np.mean) == "numpy.mean"
    assert record.render(LogisticRegression) == (
        "sklearn.linear_model._logistic.LogisticRegression"
    )
    huge = record.render(list(range(10_000)))
    assert len(huge) <= record.MAX_PARAM_CHARS
    assert huge.startswith("[0, 1, 2") and huge.endswith("chars]")
    assert "truncated" in huge


def test_candidates_best_first_with_fold_scores():
    from autotrack.integrations import sklearn_record as record

    cv_results = {
        "params": [{"C": 1}, {"C": 2}, {"C": 3}],
        "param_C": np.ma.array([1, 2, 3]),
        "mean_test_score": np.array([0.5, 0.9, 0.7]),
        "rank_test_score": np.array([3, 1, 2]),
        "split0_test_score": np.array([0.4, 0.8, np.nan]),
        "split1_test_score": np.array([0.6, 1.0, 0.7]),
    }
    rows = record.candidates(cv_results, max_runs=2)
    assert [r.index for r in rows] == [1, 2]
    assert rows[0].params == {"C": 2}
    assert rows[0].metrics == {"mean_test_score": 0.9, "rank_test_score": 1.0}
    assert rows[0].folds == {"test_score": [0.8, 1.0]}
    assert np.isnan(rows[1].folds["test_score"][0])  # kept here, dropped when logged
    table = record.cv_results_csv(cv_results).splitlines()
    assert table[0].startswith("params,param_C,mean_test_score")
    assert table[2].startswith("C=2,2,0.9")


def test_variable_name_finds_the_callers_name():
    from autotrack.integrations import sklearn_record as record

    X_holdout = np.zeros(3)
    assert record.variable_name(X_holdout) == "X_holdout"
    assert record.variable_name(X_holdout[:2]) is None
