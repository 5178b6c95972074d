"""Containment: autotrack's errors become one warning and a note on the run, or raise in
strict mode; injected callbacks never end the user's training."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager

import pytest

import autotrack
from autotrack import safety, tracking
from autotrack.safety import (
    AutotrackWarning,
    contained,
    record_error,
    safe_callback_methods,
    strict,
    warn_once,
)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    safety.reset_warnings()
    yield
    safety.reset_warnings()


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")


@contextmanager
def autotrack_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    caught[:] = [w for w in caught if issubclass(w.category, AutotrackWarning)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("on", True), ("0", False), ("", False), ("no", False)],
)
def test_strict_reads_the_environment_each_time(monkeypatch, value, expected):
    monkeypatch.setenv("AUTOTRACK_STRICT", value)
    assert strict() is expected


def test_warn_once_per_key():
    with autotrack_warnings() as caught:
        assert warn_once("k", "first") is True
        assert warn_once("k", "again") is False
        assert warn_once("other", "second") is True
    assert [str(w.message) for w in caught] == ["first", "second"]


@pytest.mark.usefixtures("lenient")
def test_contained_swallows_and_warns_once_per_integration_and_stage():
    with autotrack_warnings() as caught:
        for _ in range(5):
            with contained("after", "sklearn") as guard:
                raise ZeroDivisionError("plot went wrong")
            assert guard.failed and isinstance(guard.error, ZeroDivisionError)
        with contained("before", "sklearn"):
            raise ValueError("bad param")
        with contained("after", "xgboost"):
            raise ValueError("other integration")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert messages[0].startswith("autotrack (sklearn): after failed with ZeroDivisionError")
    assert "Not recorded: the call's metrics, plots or model" in messages[0]
    assert "AUTOTRACK_STRICT=1" in messages[0]


@pytest.mark.usefixtures("lenient")
def test_contained_silent_and_success_paths():
    with autotrack_warnings() as caught:
        with contained("after", "sklearn", silent=True) as guard:
            raise RuntimeError("quiet")
        with contained("after", "sklearn") as ok:
            pass
    assert caught == [] and guard.failed and not ok.failed


def test_strict_mode_reraises_the_same_error():
    error = RuntimeError("bug in a hook")
    with pytest.raises(RuntimeError) as raised, contained("after", "sklearn"):
        raise error
    assert raised.value is error


@pytest.mark.usefixtures("lenient")
def test_interrupts_are_never_contained():
    with pytest.raises(KeyboardInterrupt), contained("after"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), contained("after"):
        raise SystemExit(3)


@pytest.mark.usefixtures("lenient")
def test_errors_are_recorded_on_the_run():
    with autotrack.start_run() as run, autotrack_warnings() as caught:
        with contained("after", "sklearn", run=run):
            raise ValueError("could not draw the ROC curve")
        with contained("callback", "keras", run=run):
            raise KeyError("val_loss")
    assert len(caught) == 2
    recorded = autotrack.get_run(run.run_id)
    summary = recorded.tags["autotrack.errors"]
    assert summary.startswith("2 error(s): after: ValueError: could not draw the ROC curve")
    assert "callback: KeyError" in summary
    path = autotrack.artifact_path(run.run_id, "autotrack_diagnostics.json")
    with open(path) as handle:
        diagnostics = json.load(handle)
    assert [e["stage"] for e in diagnostics["errors"]] == ["after", "callback"]
    assert diagnostics["errors"][0]["integration"] == "sklearn"
    assert "could not draw the ROC curve" in diagnostics["errors"][0]["traceback"]


def test_record_error_survives_a_broken_store(monkeypatch):
    with autotrack.start_run() as run:

        def broken(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(tracking.get_store(), "log_batch", broken)
        monkeypatch.setattr(tracking.get_store(), "log_artifact", broken)
        record_error(run, "after", ValueError("x"))  # must not raise
        monkeypatch.undo()


# -- injected callbacks ---------------------------------------------------------------------------
def make_faulty() -> type:
    """A fresh callback class whose methods all fail (each test decorates its own)."""

    class Faulty:
        def __init__(self, call=None):
            self.call = call
            self.seen: list[int] = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(epoch)
            raise KeyError("val_accuracy")

        def before_training(self, model):
            raise RuntimeError("setup failed")

        def __call__(self, env):
            raise RuntimeError("called")

        def _private(self):
            raise RuntimeError("untouched")

    return Faulty


def train(callback, epochs: int) -> str:
    """A framework's loop: any exception from a callback would end training."""
    model = callback.before_training("model") if hasattr(callback, "before_training") else "model"
    for epoch in range(epochs):
        callback.on_epoch_end(epoch, {"loss": 0.1})
    return model


@pytest.mark.usefixtures("lenient")
def test_safe_callback_class_keeps_training_alive_with_one_warning():
    guarded = safe_callback_methods(
        make_faulty(), integration="keras", passthrough=["before_training"]
    )
    callback = guarded()
    with autotrack_warnings() as caught:
        assert train(callback, epochs=50) == "model"  # passthrough hands the model back
        assert callback.before_training(model="by keyword") == "by keyword"  # XGBoost's way
        assert callback(None) is None
    assert callback.seen == list(range(50))
    messages = [str(w.message) for w in caught]  # one per kind: 50 epochs, one warning
    assert len(messages) == 3, messages
    assert "callback:on_epoch_end failed with KeyError" in " ".join(messages)
    with pytest.raises(RuntimeError, match="untouched"):
        callback._private()


def test_safe_callback_methods_raise_in_strict_mode():
    guarded = safe_callback_methods(make_faulty())
    with pytest.raises(RuntimeError, match="setup failed"):
        train(guarded(), epochs=1)


@pytest.mark.usefixtures("lenient")
def test_safe_callback_function_keeps_its_attributes():
    def lightgbm_callback(env):
        raise ValueError("no eval set")

    lightgbm_callback.order = 20
    guarded = safe_callback_methods(lightgbm_callback, integration="lightgbm", silent=True)
    assert guarded(object()) is None
    assert guarded.order == 20 and guarded.__name__ == "lightgbm_callback"
    assert safe_callback_methods(guarded) is guarded  # never wrapped twice


@pytest.mark.usefixtures("lenient")
def test_safe_callback_instance_reports_on_its_calls_run():
    from types import SimpleNamespace

    with autotrack.start_run() as run:
        call = SimpleNamespace(
            integration=SimpleNamespace(name="xgboost"),
            config=SimpleNamespace(silent=True),
            run=run,
        )
        callback = safe_callback_methods(make_faulty()(call))
        with autotrack_warnings() as caught:
            train(callback, epochs=3)
    assert caught == []  # the call's config says silent
    summary = autotrack.get_run(run.run_id).tags["autotrack.errors"]
    assert summary.startswith("4 error(s): callback:before_training: RuntimeError")
