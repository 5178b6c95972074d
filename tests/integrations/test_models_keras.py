"""autotrack.models with Keras: `.keras` round trip, weights-only fallback, safe mode."""

from __future__ import annotations

import json
import os
import warnings

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")
KERAS_3 = int(keras.__version__.split(".")[0]) >= 3

import autotrack  # noqa: E402
from autotrack.models import (  # noqa: E402
    ModelError,
    SignatureError,
    Spec,
    UntrustedModelError,
    load_model,
    log_model,
    save_model,
)
from autotrack.models.keras import WeightsOnlyWarning  # noqa: E402


class Scale:
    """A plain Python object: Keras cannot put it in a model config."""

    def __init__(self, factor):
        self.factor = factor


class Scaled(keras.Model):
    """A subclass taking a non-serialisable argument: Keras cannot save it whole."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.hidden = keras.layers.Dense(4)
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x) * self.scale.factor)


class Plain(keras.Model):
    """A subclass Keras saves whole but cannot rebuild (no get_config/from_config)."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((32, 3)).astype("float32")
    y = (X.sum(axis=1) > 1.5).astype("float32")
    return X, y


def _sequential(X, y):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, y, epochs=1, verbose=0)
    return model


def test_sequential_round_trip_and_predictor(tmp_path, data):
    X, y = data
    model = _sequential(X, y)
    expected = model.predict(X, verbose=0)
    info = save_model(model, tmp_path / "m", X=X, y_pred=expected)
    assert info.flavor == "keras" and info.serialization_format == "keras"
    assert (tmp_path / "m" / "model.keras").is_file()
    descriptor = json.loads((tmp_path / "m" / "model.json").read_text())
    assert descriptor["framework_version"] == keras.__version__
    requirements = (tmp_path / "m" / "requirements.txt").read_text()
    assert f"keras=={keras.__version__}" in requirements.split()

    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, rtol=1e-6)

    predictor = load_model(tmp_path / "m", as_predictor=True)
    assert predictor.signature.inputs == (Spec(dtype="float32", shape=(-1, 3)),)
    # float64 input is accepted (cast to the float32 the network was trained on)
    np.testing.assert_allclose(predictor.predict(X.astype("float64")), expected, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(predictor.input_example), expected[:5], rtol=1e-6)
    with pytest.raises(SignatureError, match=r"shape \(32, 2\) but the model expects \(-1, 3\)"):
        predictor.predict(X[:, :2])
    with pytest.raises(SignatureError, match="dtype str"):
        predictor.predict(X.astype(str))


def test_weights_only_format_loads_into_model_class(tmp_path, data):
    X, _ = data
    model = Scaled(Scale(3.0))
    expected = np.asarray(model(X))
    info = save_model(model, tmp_path / "m", X=X, serialization_format="weights")
    assert info.serialization_format == "weights"
    assert (tmp_path / "m" / "model.weights.h5").is_file()
    assert not (tmp_path / "m" / "model.keras").exists()
    with pytest.raises(ModelError, match="model_class"):
        load_model(tmp_path / "m")
    # A fresh, unbuilt instance: built from the signature's shape, then the weights loaded.
    fresh = Scaled(Scale(3.0))
    loaded = load_model(tmp_path / "m", model_class=fresh)
    assert loaded is fresh
    np.testing.assert_allclose(np.asarray(loaded(X)), expected, rtol=1e-6)


def test_model_keras_cannot_save_whole_still_loads_into_its_class(tmp_path, data):
    X, _ = data
    model = Scaled(Scale(3.0))
    expected = np.asarray(model(X))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_model(model, tmp_path / "m", X=X)
    if KERAS_3:  # Keras 3 refuses to save it whole: weights only, with a warning
        assert any(issubclass(w.category, WeightsOnlyWarning) for w in caught)
        assert (tmp_path / "m" / "model.weights.h5").is_file()
    # (Keras 2 saves it with an empty config it cannot rebuild from.)
    with pytest.raises(ModelError, match="model_class"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", model_class=Scaled(Scale(3.0)))
    np.testing.assert_allclose(np.asarray(loaded(X)), expected, rtol=1e-6)


def test_subclass_round_trip_with_model_class(tmp_path, data):
    X, _ = data
    model = Plain()
    expected = np.asarray(model(X))
    save_model(model, tmp_path / "m", X=X)
    assert (tmp_path / "m" / "model.keras").is_file()
    if KERAS_3:  # Keras 3 cannot rebuild it from its config alone
        with pytest.raises(ModelError, match="model_class"):
            load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", model_class=Plain)
    assert type(loaded) is Plain
    np.testing.assert_allclose(np.asarray(loaded(X)), expected, rtol=1e-6)
    predictor = load_model(tmp_path / "m", model_class=Plain, as_predictor=True)
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-6)


def test_lambda_layer_is_refused_without_trust(tmp_path, data):
    X, _ = data
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(lambda t: t + 1.0), keras.layers.Dense(1)]
    )
    expected = model.predict(X, verbose=0)
    save_model(model, tmp_path / "m")
    with pytest.raises(UntrustedModelError, match="trust=True"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", trust=True)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, rtol=1e-6)


def test_tampered_keras_file_is_refused(tmp_path, data):
    X, y = data
    save_model(_sequential(X, y), tmp_path / "m")
    path = tmp_path / "m" / "model.keras"
    path.write_bytes(path.read_bytes()[:-10])
    from autotrack.models import ModelIntegrityError

    with pytest.raises(ModelIntegrityError, match="truncated"):
        load_model(tmp_path / "m")


def test_log_model_and_load_by_runs_uri(data):
    X, y = data
    model = _sequential(X, y)
    with autotrack.start_run() as run:
        info = log_model(model, X=X)
    assert info.uri == f"runs:/{run.run_id}/model"
    loaded = load_model(info.uri)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
