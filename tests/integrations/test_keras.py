"""Keras autologging (tf.keras / Keras 2 and Keras 3 on any backend), on tiny real models.

One process, few short fits: TensorFlow is slow to import and the CI machine is small.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

import autotrack  # noqa: E402
from autotrack import patching, safety  # noqa: E402
from autotrack.integrations import keras as integration  # noqa: E402
from autotrack.integrations.keras_record import (  # noqa: E402
    batch_size_of,
    compile_params,
    describe,
    early_stopping_results,
    fit_params,
    flatten_config,
    replace_argument,
    scalar_metrics,
    with_callback,
)
from autotrack.models.keras import WeightsOnlyWarning  # noqa: E402

KERAS_3 = not keras.__version__.startswith("2.")
BACKEND = keras.backend.backend() if hasattr(keras.backend, "backend") else "tensorflow"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((64, 4)).astype("float32")
    y = (X.sum(axis=1) > 2).astype("float32")
    X_val = rng.random((16, 4)).astype("float32")
    y_val = (X_val.sum(axis=1) > 2).astype("float32")
    return X, y, X_val, y_val


@pytest.fixture
def autolog():
    """Enable with the given options; always disabled again afterwards."""

    def enable(**options):
        autotrack.tensorflow.autolog(**options)

    enable()
    yield enable
    autotrack.tensorflow.autolog(disable=True)


def _sequential(learning_rate=0.01, optimizer=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _only_run():
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0]


def _history(run_id, key):
    return [(m.step, m.value) for m in autotrack.get_metric_history(run_id, key)]


# -- what to record: pure functions --------------------------------------------------------------
def test_fit_params_merge_defaults_and_drop_data_arguments():
    params = fit_params(
        {"self": object(), "x": [1], "y": [2], "epochs": 3, "callbacks": [], "verbose": 0},
        {"batch_size": None, "epochs": 1, "shuffle": True, "_private": 1},
    )
    assert params == {"batch_size": None, "epochs": 3, "shuffle": True}


def test_flatten_config_expands_serialised_schedules():
    config = {
        "name": "sgd",
        "momentum": 0.9,
        "learning_rate": {"module": "m", "class_name": "ExponentialDecay",
                          "config": {"initial_learning_rate": 0.1, "name": "ExponentialDecay"}},
    }  # fmt: skip
    assert flatten_config("optimizer", config) == {
        "optimizer_momentum": 0.9,
        "optimizer_learning_rate": "ExponentialDecay",
        "optimizer_learning_rate_initial_learning_rate": 0.1,
    }


def test_describe_names_losses_and_metrics_however_given():
    assert describe("mse") == "mse"
    assert describe(keras.losses.MeanSquaredError()) == "mean_squared_error"
    assert describe(["mae", {"class_name": "AUC", "config": {"name": "auc"}}]) == "mae, auc"
    assert describe({"class_name": "function", "config": "my_loss"}) == "my_loss"
    assert describe({"out_a": "mse", "out_b": "mae"}) == "out_a: mse, out_b: mae"

    def my_loss(y_true, y_pred):
        return y_pred

    assert describe(my_loss) == "my_loss"
    assert compile_params({"loss": "mse", "metrics": None, "loss_weights": None}, None) == {
        "loss": "mse"
    }


def test_batch_size_of_arrays_pipelines_and_generators(data):
    X = data[0]
    assert batch_size_of(X, 16) == 16
    assert batch_size_of(X, None) == 32  # Keras' default for arrays
    assert batch_size_of(iter([X]), None) is None
    if BACKEND == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(X).batch(8).prefetch(2)
        assert batch_size_of(dataset, None) == 8


def test_callbacks_copied_and_argument_replaced_where_passed():
    user = ["a"]
    assert with_callback(user, "ours") == ["a", "ours"] and user == ["a"]
    assert with_callback(None, "ours") == ["ours"]
    assert with_callback(("a",), "ours") == ["a", "ours"]
    names = ["x", "y", "batch_size", "epochs", "verbose", "callbacks"]
    args, kwargs = replace_argument(names, (1, 2, 3, 4, 0, ["a"]), {}, "callbacks", ["b"])
    assert args == (1, 2, 3, 4, 0, ["b"]) and kwargs == {}
    args, kwargs = replace_argument(names, (1, 2), {"epochs": 3}, "callbacks", ["b"])
    assert args == (1, 2) and kwargs == {"epochs": 3, "callbacks": ["b"]}


def test_scalar_metrics_keep_numbers_and_skip_arrays():
    logs = {"loss": np.float32(0.5), "acc": 1, "per_class": np.array([0.1, 0.2]), "one": [0.3]}
    assert scalar_metrics(logs, "eval_") == {"eval_loss": 0.5, "eval_acc": 1.0, "eval_one": 0.3}


def test_early_stopping_results_follow_keras_semantics():
    callback = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)
    callback.stopped_epoch, callback.best, callback.best_epoch = 0, 0.25, 2
    callback.best_weights = [np.zeros(1)]
    # Not stopped: Keras 3 still restores the best weights at the end, Keras 2 does not.
    assert early_stopping_results(callback, restores_at_end=True) == {
        "best_val_loss": 0.25, "best_epoch": 2, "restored_epoch": 2}  # fmt: skip
    assert "restored_epoch" not in early_stopping_results(callback, restores_at_end=False)
    callback.stopped_epoch = 4
    assert early_stopping_results(callback, restores_at_end=False)["stopped_epoch"] == 4


def test_log_every_n_steps_must_be_positive():
    with pytest.raises(TypeError, match="log_every_n_steps"):
        autotrack.tensorflow.autolog(log_every_n_steps=0)


# -- fit ------------------------------------------------------------------------------------------
def test_sequential_fit_records_params_metrics_summary_dataset_and_model(autolog, data):
    X, y, X_val, y_val = data
    model = _sequential()
    callbacks: list = []
    history = model.fit(X, y, epochs=3, batch_size=16, validation_data=(X_val, y_val),
                        callbacks=callbacks, verbose=0)  # fmt: skip
    assert callbacks == []  # the user's list is not touched
    run = _only_run()
    assert run.status == "FINISHED"
    assert run.tags["autotrack.integration"] == "tensorflow"
    assert run.tags["keras.backend"] == BACKEND
    assert run.params["epochs"] == "3"
    assert run.params["batch_size"] == "16"
    assert run.params["steps_per_epoch"] == "4"
    assert run.params["optimizer_name"] == "Adam"
    assert float(run.params["optimizer_learning_rate"]) == pytest.approx(0.01)
    assert run.params["loss"] == "binary_crossentropy"
    assert run.params["metrics"] == "accuracy"
    assert run.params["total_params"] == str(4 * 8 + 8 + 8 + 1)
    assert run.params["trainable_params"] == run.params["total_params"]
    assert {"x", "y", "validation_data", "callbacks"}.isdisjoint(run.params)
    for key, values in history.history.items():
        recorded = _history(run.run_id, key)
        assert [s for s, _ in recorded] == [0, 1, 2]
        assert [v for _, v in recorded] == pytest.approx(values, rel=1e-6)
    assert "val_loss" in run.metrics
    assert "learning_rate" not in run.metrics  # constant: already a param
    with open(autotrack.artifact_path(run.run_id, "model_summary.txt")) as file:
        summary = file.read()
    assert "dense" in summary and "Total params" in summary
    assert run.tags["dataset.train.shape"] == "64x4"
    assert run.tags["dataset.validation.shape"] == "16x4"

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    files = {f.path for f in autotrack.list_artifacts(run.run_id, "model")}
    assert {"model/model.keras", "model/signature.json", "model/input_example.json"} <= files
    with open(autotrack.artifact_path(run.run_id, "model/signature.json")) as file:
        signature = json.load(file)
    assert signature["inputs"] == [{"dtype": "float32", "shape": [-1, 4]}]
    assert signature["outputs"] == [{"dtype": "float32", "shape": [-1, 1]}]


def test_training_results_identical_with_and_without_autolog(data):
    X, y, _, _ = data

    def train():
        model = _sequential()
        history = model.fit(X, y, epochs=2, batch_size=16, verbose=0)
        return history.history, model.get_weights()

    plain_history, plain_weights = train()
    autotrack.tensorflow.autolog()
    try:
        logged_history, logged_weights = train()
    finally:
        autotrack.tensorflow.autolog(disable=True)
    assert len(autotrack.search_runs()) == 1
    assert logged_history == plain_history
    for plain, logged in zip(plain_weights, logged_weights, strict=True):
        np.testing.assert_array_equal(plain, logged)


def test_functional_model_on_tf_data(autolog, data):
    if BACKEND != "tensorflow":
        pytest.skip("tf.data input needs the TensorFlow backend")
    import tensorflow as tf

    X, y, _, _ = data
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(8).prefetch(1)
    model.fit(dataset, epochs=2, verbose=0)
    run = _only_run()
    assert run.params["batch_size"] == "8"
    assert run.params["steps_per_epoch"] == "8"
    assert run.params["optimizer_name"] == "SGD"
    assert [s for s, _ in _history(run.run_id, "loss")] == [0, 1]
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    assert "dataset.train.digest" not in run.tags  # a pipeline is not read a second time


def test_generator_input_gets_params_metrics_and_a_signature_from_the_model(autolog, data):
    X, y, _, _ = data

    def batches():
        while True:
            for start in range(0, 64, 16):
                yield X[start : start + 16], y[start : start + 16]

    model = _sequential()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: shuffle ignored for generators
        model.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0)
    run = _only_run()
    assert run.params["steps_per_epoch"] == "4"
    assert "batch_size" not in run.params  # unknowable without reading the generator
    assert [s for s, _ in _history(run.run_id, "loss")] == [0, 1]
    with open(autotrack.artifact_path(run.run_id, "model/signature.json")) as file:
        signature = json.load(file)
    assert signature["inputs"] == [{"dtype": "float32", "shape": [-1, 4]}]


class TinyNet(keras.Model):
    """A subclassed model (no get_config)."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(3, activation="relu")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_model_recorded_and_loadable_with_its_class(autolog, data):
    X, y, _, _ = data
    keras.utils.set_random_seed(0)
    model = TinyNet()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    run = _only_run()
    assert run.params["total_params"] == str(4 * 3 + 3 + 3 + 1)  # built during fit
    assert len(_history(run.run_id, "loss")) == 2
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model", model_class=TinyNet)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


class Unsaveable(keras.Model):
    """A model whose config cannot be written (as with a live connection held inside)."""

    def __init__(self):
        super().__init__()
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(x)

    def get_config(self):
        raise TypeError("holds a database connection")


def test_unserialisable_model_falls_back_to_weights_with_a_warning(autolog, data):
    X, y, _, _ = data
    keras.utils.set_random_seed(0)
    model = Unsaveable()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(WeightsOnlyWarning):
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    run = _only_run()
    files = {f.path for f in autotrack.list_artifacts(run.run_id, "model")}
    assert "model/model.weights.h5" in files and "model/model.keras" not in files
    loaded = autotrack.load_model(f"runs:/{run.run_id}/model", model_class=Unsaveable)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)

    autolog(silent=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert not [w for w in caught if issubclass(w.category, WeightsOnlyWarning)]
    assert len(autotrack.search_runs()) == 2


def test_early_stopping_results_and_user_callbacks_see_the_same_logs(autolog, data):
    X, y, _, _ = data
    model = _sequential()
    # min_delta is huge: epoch 0 sets the best loss, epoch 1 cannot beat it, training stops.
    early = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0,
                                          restore_best_weights=True)  # fmt: skip
    seen: list[dict] = []
    spy = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(dict(logs)))
    history = model.fit(X, y, epochs=10, batch_size=16, callbacks=[early, spy], verbose=0)
    run = _only_run()
    assert len(history.history["loss"]) == 2
    assert run.metrics["stopped_epoch"] == 1
    assert run.metrics["best_epoch"] == 0
    assert run.metrics["restored_epoch"] == 0
    assert run.metrics["best_loss"] == pytest.approx(history.history["loss"][0], rel=1e-6)
    assert run.params["early_stopping_monitor"] == "loss"
    assert run.params["early_stopping_patience"] == "1"
    assert run.params["early_stopping_restore_best_weights"] == "True"
    assert run.params["early_stopping_min_delta"] == "10.0"
    for epoch, logs in enumerate(seen):
        for key, value in logs.items():
            assert (epoch, pytest.approx(value, rel=1e-6)) in _history(run.run_id, key)


def test_learning_rate_schedule_logged_every_epoch(autolog, data):
    X, y, _, _ = data
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = _sequential(optimizer=keras.optimizers.SGD(schedule))
    model.fit(X, y, epochs=3, batch_size=32, verbose=0)
    run = _only_run()
    assert run.params["optimizer_learning_rate"] == "ExponentialDecay"
    assert run.params["optimizer_learning_rate_initial_learning_rate"] == "0.1"
    rates = _history(run.run_id, "learning_rate")
    assert [s for s, _ in rates] == [0, 1, 2]
    values = [v for _, v in rates]
    assert values == sorted(values, reverse=True) and values[0] < 0.1
    assert values[-1] == pytest.approx(0.1 * 0.5 ** (6 / 2), rel=0.6)


def test_learning_rate_changed_by_a_callback_is_logged_from_the_start(autolog, data):
    X, y, _, _ = data
    model = _sequential(learning_rate=0.01)

    def lower(epoch, logs):
        if epoch == 2:
            model.optimizer.learning_rate.assign(0.001)

    changer = keras.callbacks.LambdaCallback(on_epoch_begin=lower)
    model.fit(X, y, epochs=4, batch_size=32, callbacks=[changer], verbose=0)
    rates = _history(_only_run().run_id, "learning_rate")
    assert [s for s, _ in rates] == [0, 1, 2, 3]
    assert [v for _, v in rates] == pytest.approx([0.01, 0.01, 0.001, 0.001], rel=1e-6)


@pytest.mark.parametrize(
    ("error", "status"), [(ValueError("bad callback"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_failing_user_callback_keeps_epochs_so_far(autolog, data, error, status):
    X, y, _, _ = data
    model = _sequential()

    def fail(epoch, logs):
        if epoch == 1:
            raise error

    failing = keras.callbacks.LambdaCallback(on_epoch_end=fail)
    with pytest.raises(type(error)) as raised:
        model.fit(X, y, epochs=5, batch_size=32, callbacks=[failing], verbose=0)
    assert raised.value is error
    run = _only_run()
    assert run.status == status
    # the user's callback runs before ours: epoch 1 never reached autotrack
    assert [s for s, _ in _history(run.run_id, "loss")] == [0]


def test_evaluate_after_fit_adds_eval_metrics_to_the_fit_run(autolog, data):
    X, y, X_val, y_val = data
    never_fit = _sequential()
    never_fit.evaluate(X_val, y_val, verbose=0)
    assert autotrack.search_runs() == []
    model = _sequential()
    model.fit(X, y, epochs=2, batch_size=32, validation_data=(X_val, y_val), verbose=0)
    run = _only_run()
    assert not any(key.startswith("eval_") for key in run.metrics)  # validation is not eval
    loss, accuracy = model.evaluate(X_val, y_val, verbose=0)
    run = _only_run()
    assert run.metrics["eval_loss"] == pytest.approx(loss, rel=1e-6)
    assert run.metrics["eval_accuracy"] == pytest.approx(accuracy, rel=1e-6)
    assert [s for s, _ in _history(run.run_id, "eval_loss")] == [1]  # the last epoch


def test_batch_metrics_every_n_steps(autolog, data):
    X, y, _, _ = data
    autolog(log_every_n_steps=3)
    model = _sequential()
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)  # 4 batches per epoch
    run = _only_run()
    assert [s for s, _ in _history(run.run_id, "batch_loss")] == [3, 6]
    assert [s for s, _ in _history(run.run_id, "loss")] == [0, 1]


def test_fine_tuning_continues_steps_in_the_users_run_or_opens_new_runs(autolog, data):
    X, y, _, _ = data
    model = _sequential()
    with autotrack.start_run() as user_run:
        model.fit(X, y, epochs=2, batch_size=32, verbose=0)
        model.fit(X, y, epochs=4, initial_epoch=2, batch_size=32, verbose=0)
    run = _only_run()
    assert run.run_id == user_run.run_id and run.status == "FINISHED"
    assert [s for s, _ in _history(run.run_id, "loss")] == [0, 1, 2, 3]
    assert run.params["epochs"] == "2"  # params are write-once: the first fit's are kept
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert len(autotrack.search_runs()) == 3


def test_patched_once_and_disable_restores_the_original(data):
    X, y, _, _ = data
    before = {name: vars(keras.Model).get(name) for name in ("fit", "evaluate")}
    autotrack.tensorflow.autolog()
    autotrack.keras.autolog()  # the alias; calling again never stacks a patch
    for name in ("fit", "evaluate"):
        proxy = vars(keras.Model)[name]
        assert patching.is_autotrack_proxy(proxy)
        assert not patching.is_autotrack_proxy(proxy.__wrapped__)
    autotrack.tensorflow.autolog(disable=True)
    assert {name: vars(keras.Model).get(name) for name in ("fit", "evaluate")} == before
    _sequential().fit(X, y, epochs=1, verbose=0)
    assert autotrack.search_runs() == []


def test_an_autotrack_bug_in_the_callback_never_stops_training(autolog, data, monkeypatch):
    X, y, _, _ = data
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    safety.reset_warnings()

    def broken(self, epoch, logs):
        raise RuntimeError("autotrack bug")

    monkeypatch.setattr(integration.FitRecorder, "epoch_end", broken)
    model = _sequential()
    with pytest.warns(safety.AutotrackWarning, match="autotrack bug"):
        history = model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    assert len(history.history["loss"]) == 2
    run = _only_run()
    assert run.status == "FINISHED"
    assert "autotrack bug" in run.tags[safety.ERRORS_TAG]


def test_records_only_what_the_readme_declares(autolog, data):
    from documented import assert_documented

    X, y, X_val, y_val = data
    autolog(log_every_n_steps=2)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = _sequential(optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0,
                                          restore_best_weights=True)  # fmt: skip
    model.fit(X, y, epochs=4, batch_size=32, validation_data=(X_val, y_val), callbacks=[early],
              class_weight={0: 1.0, 1: 2.0}, verbose=0)  # fmt: skip
    model.evaluate(X_val, y_val, verbose=0)
    run = _only_run()
    assert {"stopped_epoch", "batch_loss", "eval_loss", "learning_rate"} <= set(run.metrics)
    assert_documented(integration.RECORDED)
