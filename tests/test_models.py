"""autotrack.models: the model directory format, scikit-learn / XGBoost / LightGBM flavors,
signatures, input examples, safety (pickle, skops trusted types, checksums) and runs:/ URIs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
pytest.importorskip("skops")

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

import autotrack  # noqa: E402
from autotrack.models import (  # noqa: E402
    ModelError,
    ModelIntegrityError,
    PickleWarning,
    Signature,
    SignatureError,
    Spec,
    UntrustedModelError,
    infer_signature,
    load_model,
    log_model,
    save_model,
)
from autotrack.models.example import example_json  # noqa: E402


class Doubler(TransformerMixin, BaseEstimator):
    """A user-defined transformer: a type skops does not trust by default."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


def add_one(X):
    """A user function referenced by a model: skops records it by name."""
    return X + 1.0


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def fitted(iris):
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _rewrite_checksums(model_dir: Path) -> None:
    """What a careful attacker would do: make model.json agree with changed files."""
    descriptor = _json(model_dir / "model.json")
    for name in descriptor["files"]:
        data = (model_dir / name).read_bytes()
        descriptor["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (model_dir / "model.json").write_text(json.dumps(descriptor), encoding="utf-8")


# -- import cost ---------------------------------------------------------------------------
def test_importing_models_imports_no_framework():
    code = (
        "import sys, autotrack, autotrack.models;"
        "heavy = {'numpy', 'pandas', 'sklearn', 'skops', 'xgboost', 'lightgbm', 'torch',"
        " 'keras', 'tensorflow'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_api_is_the_models_api():
    from autotrack import models

    assert autotrack.save_model is models.save_model
    assert autotrack.log_model is models.log_model
    assert autotrack.load_model is models.load_model


# -- signatures ----------------------------------------------------------------------------
def test_signature_of_dataframe_names_columns_and_dtypes():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2], "c": ["x", "y"]})
    sig = infer_signature(frame, np.array([0, 1]))
    assert [(s.name, s.dtype, s.shape) for s in sig.inputs] == [
        ("a", "float64", None),
        ("b", "int64", None),
        ("c", frame["c"].dtype.name, None),
    ]
    assert sig.is_columns
    assert sig.outputs == (Spec(dtype="int64", shape=(-1,)),)


def test_signature_of_array_frees_the_batch_dimension_and_round_trips():
    sig = infer_signature(np.zeros((7, 3, 2), dtype="float32"), np.zeros((7, 4)))
    assert sig.inputs == (Spec(dtype="float32", shape=(-1, 3, 2)),)
    assert sig.outputs == (Spec(dtype="float64", shape=(-1, 4)),)
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


# -- scikit-learn --------------------------------------------------------------------------
def test_sklearn_round_trip_writes_the_documented_directory(tmp_path, iris, fitted):
    import sklearn

    X, _ = iris
    info = save_model(fitted, tmp_path / "m", X=X, y_pred=fitted.predict(X), metadata={"k": 1})
    model_dir = tmp_path / "m"
    assert info.flavor == "sklearn" and info.serialization_format == "skops"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "input_example.json",
        "model.json",
        "model.skops",
        "requirements.txt",
        "signature.json",
    ]
    descriptor = _json(model_dir / "model.json")
    assert descriptor["flavor"] == "sklearn"
    assert descriptor["framework_version"] == sklearn.__version__
    assert descriptor["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert descriptor["model_class"].endswith("LogisticRegression")
    assert descriptor["metadata"] == {"k": 1}
    skops_bytes = (model_dir / "model.skops").read_bytes()
    assert descriptor["files"]["model.skops"]["sha256"] == hashlib.sha256(skops_bytes).hexdigest()
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert any(line.startswith("skops==") for line in requirements)

    loaded = load_model(model_dir)
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))

    predictor = load_model(model_dir, as_predictor=True)
    example = predictor.input_example
    assert len(example) == 5
    pd.testing.assert_frame_equal(example, X.head(5).reset_index(drop=True))
    np.testing.assert_array_equal(predictor.predict(X), fitted.predict(X))


def test_pipeline_with_user_transformer_records_its_type_as_trusted(tmp_path, iris):
    X, y = iris
    pipe = make_pipeline(Doubler(), StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    save_model(pipe, tmp_path / "m")
    trusted = _json(tmp_path / "m" / "model.json")["trusted_types"]
    assert f"{Doubler.__module__}.Doubler" in trusted
    assert "sklearn.pipeline.Pipeline" in trusted
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X), pipe.predict(X))


def test_recorded_types_cover_every_type_skops_would_refuse(iris):
    import skops.io as sio

    from autotrack.models.objects import schema_types

    X, y = iris
    for model in [
        make_pipeline(Doubler(), StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
        make_pipeline(FunctionTransformer(add_one), LogisticRegression(max_iter=500)).fit(X, y),
    ]:
        data = sio.dumps(model)
        untrusted = set(sio.get_untrusted_types(data=data))
        assert untrusted and untrusted <= set(schema_types(data))


def test_skops_type_not_recorded_at_save_time_is_refused_by_name(tmp_path, iris, fitted):
    X, y = iris
    save_model(fitted, tmp_path / "m")
    # Swap in a file needing an extra type and fix up the checksums: the trusted list still
    # says [] so the type must be refused, by name.
    import skops.io as sio

    other = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(X, y)
    sio.dump(other, tmp_path / "m" / "model.skops")
    _rewrite_checksums(tmp_path / "m")
    recorded = _json(tmp_path / "m" / "model.json")["trusted_types"]
    assert f"{Doubler.__module__}.Doubler" not in recorded
    with pytest.raises(UntrustedModelError, match=rf"{Doubler.__module__}\.Doubler"):
        load_model(tmp_path / "m")
    np.testing.assert_array_equal(
        load_model(tmp_path / "m", trust=True).predict(X), other.predict(X)
    )


def test_explicit_pickle_warns_and_needs_trust(tmp_path, iris, fitted):
    X, _ = iris
    with pytest.warns(PickleWarning, match="trust=True"):
        info = save_model(fitted, tmp_path / "m", serialization_format="pickle")
    assert info.serialization_format == "pickle"
    assert (tmp_path / "m" / "model.pkl").is_file()
    with pytest.raises(UntrustedModelError, match="trust=True"):
        load_model(tmp_path / "m")
    np.testing.assert_array_equal(
        load_model(tmp_path / "m", trust=True).predict(X), fitted.predict(X)
    )


def test_estimator_skops_cannot_load_falls_back_to_pickle_and_is_refused(tmp_path, iris):
    X, y = iris
    pipe = make_pipeline(FunctionTransformer(lambda a: a + 1.0), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    with pytest.warns(PickleWarning, match="skops cannot save"):
        info = save_model(pipe, tmp_path / "m")
    assert info.serialization_format in ("pickle", "cloudpickle")
    with pytest.raises(UntrustedModelError):
        load_model(tmp_path / "m")
    with pytest.raises(UntrustedModelError):
        load_model(tmp_path / "m", as_predictor=True)
    loaded = load_model(tmp_path / "m", trust=True)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_tampered_model_file_gives_a_clear_error(tmp_path, fitted, damage):
    save_model(fitted, tmp_path / "m")
    path = tmp_path / "m" / "model.skops"
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.unlink()
    with pytest.raises(ModelIntegrityError, match=r"model\.skops"):
        load_model(tmp_path / "m")


def test_model_json_without_checksums_is_refused(tmp_path, fitted):
    save_model(fitted, tmp_path / "m")
    descriptor = _json(tmp_path / "m" / "model.json")
    del descriptor["files"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(descriptor))
    with pytest.raises(ModelIntegrityError, match="checksum"):
        load_model(tmp_path / "m")


def test_not_a_model_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        load_model(tmp_path / "empty")
    with pytest.raises(ModelError, match="no model directory"):
        load_model(tmp_path / "nowhere")


def test_save_refuses_non_empty_directory_and_unknown_models(tmp_path, fitted):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="not empty"):
        save_model(fitted, tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    with pytest.raises(ModelError, match=r"cannot save a builtins\.object"):
        save_model(object(), tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(ModelError, match="serialization_format 'ubj'"):
        save_model(fitted, tmp_path / "third", serialization_format="ubj")


def test_extra_files_are_copied_and_checksummed(tmp_path, fitted):
    notes = tmp_path / "notes.md"
    notes.write_text("trained on iris")
    save_model(fitted, tmp_path / "m", extra_files=[notes])
    assert (tmp_path / "m" / "extra_files" / "notes.md").read_text() == "trained on iris"
    (tmp_path / "m" / "extra_files" / "notes.md").write_text("changed")
    with pytest.raises(ModelIntegrityError, match=r"extra_files/notes\.md"):
        load_model(tmp_path / "m")


# -- signature enforcement -----------------------------------------------------------------
def test_predictor_names_the_missing_column(tmp_path, iris, fitted):
    X, _ = iris
    save_model(fitted, tmp_path / "m", X=X)
    predictor = load_model(tmp_path / "m", as_predictor=True)
    with pytest.raises(SignatureError, match=r"missing column 'petal width \(cm\)'"):
        predictor.predict(X.drop(columns=["petal width (cm)"]))


def test_predictor_refuses_a_wrong_dtype_naming_the_column(tmp_path, iris, fitted):
    X, _ = iris
    save_model(fitted, tmp_path / "m", X=X)
    predictor = load_model(tmp_path / "m", as_predictor=True)
    bad = X.astype({"sepal width (cm)": str})
    with pytest.raises(SignatureError, match=r"column 'sepal width \(cm\)' has dtype"):
        predictor.predict(bad)


def test_predictor_reorders_columns_drops_extras_and_casts_ints(tmp_path):
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5, "b": [1.5, 0.5, 2.5, 3.5] * 5})
    y = (frame["a"] > 1).astype(int)
    model = LogisticRegression().fit(frame, y)
    save_model(model, tmp_path / "m", X=frame)
    predictor = load_model(tmp_path / "m", as_predictor=True)
    shuffled = frame[["b", "a"]].assign(extra="ignored")
    np.testing.assert_array_equal(predictor.predict(shuffled), model.predict(frame))
    as_ints = frame.assign(a=frame["a"].astype("int64"))
    np.testing.assert_array_equal(predictor.predict(as_ints), model.predict(frame))


def test_predictor_refuses_a_wrong_shape_and_dtype_for_arrays(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    from sklearn.linear_model import Ridge

    model = Ridge().fit(X, y)
    save_model(model, tmp_path / "m", X=X)
    predictor = load_model(tmp_path / "m", as_predictor=True)
    assert predictor.signature.inputs == (Spec(dtype="float64", shape=(-1, 10)),)
    with pytest.raises(SignatureError, match=r"shape \(5, 9\) but the model expects \(-1, 10\)"):
        predictor.predict(X[:5, :9])
    with pytest.raises(SignatureError, match="dtype str"):
        predictor.predict(X[:5].astype(str))
    np.testing.assert_allclose(predictor.predict(X[:5].tolist()), model.predict(X[:5]))


@pytest.mark.parametrize(
    ("actual", "expected", "rule"),
    [
        ("float64", "float64", "same"),
        ("int32", "int64", "cast"),
        ("bool", "int64", "cast"),
        ("int64", "float32", "cast"),
        ("float64", "float32", "cast"),
        ("Int64", "int64", "same"),
        ("object", "str", "same"),
        ("int64", "int32", None),
        ("float64", "int64", None),
        ("str", "float64", None),
        ("datetime64[ns]", "float64", None),
    ],
)
def test_cast_rule(actual, expected, rule):
    from autotrack.models.enforce import cast_rule

    assert cast_rule(actual, expected) == rule


def test_input_example_is_bounded():
    wide = np.random.default_rng(0).random((50, 3000))
    text = example_json(wide, max_bytes=64 * 1024)
    assert text is not None and len(text) <= 64 * 1024
    rows = json.loads(text)["data"]
    assert 1 <= len(rows) < 5
    assert example_json(wide, max_bytes=100) is None
    assert len(json.loads(example_json(np.arange(100.0)))["data"]) == 5


def test_input_example_is_plain_json_and_decodes_back():
    from autotrack.models.example import decode

    array = np.array([[1.0, np.nan], [np.inf, 2.0]])
    text = example_json(array)
    assert "NaN" not in text and "Infinity" not in text
    back = decode(json.loads(text))
    assert back.dtype == np.float64 and back[0, 0] == 1.0 and np.isnan(back[0, 1])
    frame = pd.DataFrame({"n": [1, 2], "when": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    decoded = decode(json.loads(example_json(frame)))
    assert list(decoded.columns) == ["n", "when"]
    assert decoded["n"].dtype == np.int64 and decoded["when"].iloc[1] == frame["when"].iloc[1]


def test_data_that_cannot_be_described_costs_the_signature_not_the_model(tmp_path, fitted):
    opaque = (row for row in range(3))  # a generator: numpy would wrap it as one object
    with pytest.warns(UserWarning) as record:
        save_model(fitted, tmp_path / "m", X=opaque)
    messages = [str(w.message) for w in record]
    assert any("could not infer the model signature" in m for m in messages)
    assert any("could not save the input example" in m for m in messages)
    assert not (tmp_path / "m" / "signature.json").exists()
    assert not (tmp_path / "m" / "input_example.json").exists()
    assert isinstance(load_model(tmp_path / "m"), LogisticRegression)


def test_input_example_off_still_writes_signature(tmp_path, iris, fitted):
    X, _ = iris
    save_model(fitted, tmp_path / "m", X=X, log_input_example=False)
    assert not (tmp_path / "m" / "input_example.json").exists()
    assert (tmp_path / "m" / "signature.json").exists()


# -- XGBoost -------------------------------------------------------------------------------
def test_xgboost_wrapper_and_booster_round_trip(tmp_path, iris):
    xgb = pytest.importorskip("xgboost")
    X, y = iris
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    info = save_model(clf, tmp_path / "clf", X=X)
    assert info.flavor == "xgboost" and (tmp_path / "clf" / "model.ubj").is_file()
    loaded = load_model(tmp_path / "clf")
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=4)
    save_model(booster, tmp_path / "booster", X=X)
    loaded_booster = load_model(tmp_path / "booster")
    assert type(loaded_booster) is xgb.Booster
    expected = booster.predict(xgb.DMatrix(X))
    np.testing.assert_array_equal(loaded_booster.predict(xgb.DMatrix(X)), expected)
    predictor = load_model(tmp_path / "booster", as_predictor=True)
    np.testing.assert_array_equal(predictor.predict(X), expected)


def test_xgboost_user_subclass_needs_trust_or_model_class(tmp_path, iris):
    xgb = pytest.importorskip("xgboost")
    X, y = iris
    global MyXGB

    class MyXGB(xgb.XGBRegressor):
        pass

    MyXGB.__module__ = __name__
    MyXGB.__qualname__ = "MyXGB"
    model = MyXGB(n_estimators=3).fit(X, y)
    save_model(model, tmp_path / "m")
    with pytest.raises(UntrustedModelError, match="MyXGB"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", model_class=MyXGB)
    assert type(loaded) is MyXGB
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert type(load_model(tmp_path / "m", trust=True)) is MyXGB


# -- LightGBM ------------------------------------------------------------------------------
def test_lightgbm_wrapper_and_booster_round_trip(tmp_path, iris):
    lgb = pytest.importorskip("lightgbm")
    X, y = iris
    clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, y)
    save_model(clf, tmp_path / "clf", X=X)
    assert (tmp_path / "clf" / "model.txt").is_file()
    loaded = load_model(tmp_path / "clf")
    assert type(loaded) is lgb.LGBMClassifier
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert clf.booster_ is not None  # the user's model is untouched

    booster = lgb.train({"verbose": -1, "num_leaves": 4}, lgb.Dataset(X, label=y), 4)
    save_model(booster, tmp_path / "booster")
    assert not (tmp_path / "booster" / "wrapper.skops").exists()
    loaded_booster = load_model(tmp_path / "booster")
    assert type(loaded_booster) is lgb.Booster
    np.testing.assert_array_equal(loaded_booster.predict(X), booster.predict(X))


# -- runs ----------------------------------------------------------------------------------
def test_log_model_into_the_active_run_and_load_by_runs_uri(iris, fitted):
    X, _ = iris
    with autotrack.start_run() as run:
        info = log_model(fitted, X=X)
    assert info.run_id == run.run_id
    assert info.uri == f"runs:/{run.run_id}/model"
    names = {f.path for f in autotrack.list_artifacts(run.run_id, "model")}
    assert {"model/model.json", "model/model.skops", "model/signature.json"} <= names
    loaded = load_model(info.uri)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    predictor = load_model(f"runs:/{run.run_id}/model", as_predictor=True)
    np.testing.assert_array_equal(predictor.predict(X), fitted.predict(X))


def test_log_model_into_a_handle_under_a_custom_path(tmp_path, iris, fitted):
    X, _ = iris
    handle = autotrack.create_run(run_name="search-child")
    info = log_model(fitted, "models/best", run=handle, X=X, log_input_example=False)
    handle.end()
    assert autotrack.active_run() is None
    assert info.uri == f"runs:/{handle.run_id}/models/best"
    copy = load_model(info.uri, dst_path=tmp_path / "download")
    np.testing.assert_array_equal(copy.predict(X), fitted.predict(X))
    assert (tmp_path / "download" / "best" / "model.json").is_file()


def test_log_model_without_a_run_starts_one(fitted):
    info = log_model(fitted)
    active = autotrack.active_run()
    assert active is not None and active.run_id == info.run_id
    assert isinstance(load_model(info.uri), LogisticRegression)


def test_model_at_the_run_root_and_bad_runs_uri(fitted):
    with autotrack.start_run() as run:
        log_model(fitted, "")
    assert isinstance(load_model(f"runs:/{run.run_id}"), LogisticRegression)
    with pytest.raises(ModelError, match="runs:/<run_id>/<artifact path>"):
        load_model("runs:/")
