"""The engine's guarantees, shown with a toy integration over a toy framework (engine_toy.py).

Fault injection covers the hooks, the store and the injected callback; user exceptions keep
type, identity and traceback; only the outermost call records; concurrent fits and thread
pools behave.
"""

from __future__ import annotations

import errno
import inspect
import sqlite3
import threading
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

import autotrack
from autotrack import engine, tracking
from autotrack.autolog import make_autolog
from autotrack.integrations import IntegrationInfo
from autotrack.integrations.base import Hooks, Integration, PatchTarget
from autotrack.safety import AutotrackWarning
from engine_toy import autolog_module, clean_state, runs, toy_context


@pytest.fixture
def toy(tmp_path):
    yield from toy_context(tmp_path / "frameworks")


@pytest.fixture(autouse=True)
def _clean():
    yield from clean_state()


@pytest.fixture
def lenient(monkeypatch):
    """Containment on (the suite runs strict): autotrack's own errors become warnings."""
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")


@contextmanager
def autotrack_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    caught[:] = [w for w in caught if issubclass(w.category, AutotrackWarning)]


def only_run(**tags):
    found = runs(**tags)
    assert len(found) == 1, [r.run_name for r in found]
    return found[0]


# -- run handling -----------------------------------------------------------------------------
def test_managed_run_records_and_returns_the_identical_result(toy):
    fw = toy.import_framework()
    toy.autolog(extra_tags={"team": "vision"})
    model = fw.Model()

    assert model.fit([1, 2, 3], epochs=3) is model

    run = only_run()
    assert run.run_name == "Model-fit"
    assert run.status == "FINISHED"
    assert run.params == {"model": "Model", "epochs": "3"}
    assert run.metrics["coef"] == 2.0
    assert [m.value for m in autotrack.get_metric_history(run.run_id, "loss")] == [1, 0.5, 1 / 3]
    assert run.tags["autotrack.integration"] == toy.name
    assert run.tags["autotrack.framework"] == toy.name
    assert run.tags["autotrack.framework_version"] == "1.4.0"
    assert run.tags["team"] == "vision"
    assert autotrack.active_run() is None


def test_call_inside_user_run_logs_there_and_leaves_it_open(toy):
    fw = toy.import_framework()
    toy.autolog()
    with autotrack.start_run(run_name="mine") as mine:
        fw.Model().fit([4, 6])
        assert autotrack.active_run() is mine
        assert autotrack.get_run(mine.run_id).status == "RUNNING"
    run = only_run()
    assert run.run_id == mine.run_id
    assert run.params["model"] == "Model"
    assert run.metrics["coef"] == 5.0
    assert run.tags["autotrack.integration"] == toy.name


def test_exclusive_never_logs_into_the_users_run(toy):
    fw = toy.import_framework()
    toy.autolog(exclusive=True)
    with autotrack.start_run() as mine:
        fw.Model().fit([1, 2])
    assert only_run().run_id == mine.run_id
    assert autotrack.get_run(mine.run_id).params == {}
    fw.Model().fit([1, 2])  # no user run: a managed one
    assert len(runs(**{"autotrack.integration": toy.name})) == 1


def test_hooks_that_do_not_open_runs_log_into_the_active_run_only(toy):
    fw = toy.import_framework()
    toy.autolog()
    assert fw.metrics.score([1, 2], [1, 3]) == 0.5
    assert runs() == []
    with autotrack.start_run() as mine:
        fw.metrics.score([1, 2], [1, 2])
    assert autotrack.get_run(mine.run_id).metrics == {"score": 1.0}
    assert [e[2] for e in toy.events if e[0] == "score"] == [False, True]


def test_records_false_is_a_plain_call(toy):
    fw = toy.import_framework()
    toy.autolog()
    model = fw.Model()
    model.no_record = True
    assert model.fit([1]) is model
    assert runs() == [] and toy.events == []


# -- outermost only ---------------------------------------------------------------------------
def test_only_the_outermost_patched_call_records(toy):
    fw = toy.import_framework()
    toy.autolog()
    pipeline = fw.Pipeline([fw.Model(), fw.Regressor(), fw.Model()])
    pipeline.fit([1, 2])
    fw.Regressor().fit([3, 5])  # Regressor.fit -> Base.fit and metrics.score, all patched

    names = sorted(r.run_name for r in runs())
    assert names == ["Pipeline-fit", "Regressor-fit"]
    assert [e for e in toy.events if e[0] == "before"] == [
        ("before", "Pipeline"),
        ("before", "Regressor"),
    ]
    assert not [e for e in toy.events if e[0] == "score"]  # nested metric call: fast path


# -- user exceptions ----------------------------------------------------------------------------
def test_user_exception_propagates_unchanged_and_the_run_fails(toy):
    fw = toy.import_framework()
    toy.autolog()
    model = fw.Model()
    error = ValueError("bad training data")
    model.error = error

    with pytest.raises(ValueError) as caught:
        model.fit([1, 2])

    assert caught.value is error
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    frames = traceback.extract_tb(caught.tb)
    assert frames[0].name == inspect.currentframe().f_code.co_name
    assert (frames[-1].name, frames[-1].filename) == ("fit", fw.models.__file__)
    run = only_run()
    assert run.status == "FAILED"
    assert ("on_error", error) in toy.events


def test_keyboard_interrupt_ends_the_run_killed(toy):
    fw = toy.import_framework()
    toy.autolog()
    model = fw.Model()
    model.error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        model.fit([1])
    assert only_run().status == "KILLED"


@pytest.mark.parametrize("strict", ["1", "0"])
def test_fault_in_on_error_never_replaces_the_users_exception(toy, monkeypatch, strict):
    monkeypatch.setenv("AUTOTRACK_STRICT", strict)
    fw = toy.import_framework()
    toy.autolog()
    toy.fail("on_error")
    model = fw.Model()
    model.error = ValueError("user bug")
    with autotrack_warnings() as caught, pytest.raises(ValueError) as raised:
        model.fit([1])
    assert raised.value is model.error
    assert only_run().status == "FAILED"
    assert len(caught) == 1 and "on_error" in str(caught[0].message)


# -- autotrack's own errors ---------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["before", "after", "callback", "records"])
@pytest.mark.usefixtures("lenient")
def test_fault_in_a_hook_is_contained(toy, stage):
    fw = toy.import_framework()
    expected = fw.Model().fit([1, 2, 3], epochs=2).coef_  # before autolog
    toy.autolog()
    toy.fail(stage)
    model = fw.Model()
    user_callbacks: list = []

    with autotrack_warnings() as caught:
        for _ in range(3):
            assert model.fit([1, 2, 3], epochs=2, callbacks=user_callbacks) is model

    assert model.coef_ == expected
    assert user_callbacks == []  # the user's list is never mutated
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert message.startswith(f"autotrack ({toy.name}): {stage}")
    assert f"failed with RuntimeError: injected fault in {stage}" in message
    if stage == "records":
        assert runs() == []
        return
    found = runs()
    assert len(found) == 3 and {r.status for r in found} == {"FINISHED"}
    errors = found[0].tags["autotrack.errors"]
    assert "error(s): " in errors and stage in errors
    diagnostics = autotrack.artifact_path(found[0].run_id, "autotrack_diagnostics.json")
    with open(diagnostics) as handle:
        assert "injected fault" in handle.read()


@pytest.mark.usefixtures("lenient")
def test_silent_hides_the_warning_but_keeps_the_diagnostics(toy):
    fw = toy.import_framework()
    toy.autolog(silent=True)
    toy.fail("after")
    with autotrack_warnings() as caught:
        fw.Model().fit([1])
    assert caught == []
    assert "after" in only_run().tags["autotrack.errors"]


def test_strict_mode_raises_autotracks_own_error_and_closes_the_run(toy):
    fw = toy.import_framework()
    toy.autolog()
    toy.fail("after")
    with pytest.raises(RuntimeError, match="injected fault in after"):
        fw.Model().fit([1])
    assert only_run().status == "FAILED"
    assert autotrack.active_run() is None


@pytest.mark.usefixtures("lenient")
def test_store_failing_to_write_never_reaches_the_user(toy, monkeypatch):
    fw = toy.import_framework()
    toy.autolog()
    store = tracking.get_store()

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "log_batch", broken)
    model = fw.Model()
    with autotrack_warnings() as caught:
        assert model.fit([2, 4]) is model
        assert model.fit([2, 4]) is model
    assert model.coef_ == 3.0
    assert len(caught) == 1 and "database or disk is full" in str(caught[0].message)
    assert {r.status for r in runs()} == {"FINISHED"}


@pytest.mark.usefixtures("lenient")
def test_full_disk_while_saving_files_is_contained(toy, monkeypatch):
    fw = toy.import_framework()
    toy.autolog()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tracking.get_store(), "log_artifact", full)
    with autotrack_warnings() as caught:
        model = fw.Model()
        assert model.fit([1, 3]) is model
    run = only_run()
    assert run.metrics["coef"] == 2.0  # recorded before the file write failed
    assert "No space left on device" in run.tags["autotrack.errors"]
    assert len(caught) == 1


@pytest.mark.usefixtures("lenient")
def test_read_only_store_means_no_run_but_an_untouched_call(toy, monkeypatch):
    fw = toy.import_framework()
    toy.autolog()

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(tracking.get_store(), "create_run", read_only)
    model = fw.Model()
    with autotrack_warnings() as caught:
        assert model.fit([5], epochs=2, callbacks=None) is model
    assert model.coef_ == 5.0
    assert "start_run failed" in str(caught[0].message) and len(caught) == 1
    monkeypatch.undo()
    assert runs() == []
    assert not engine.recording()


# -- threads -------------------------------------------------------------------------------------
class Rendezvous:
    """A user callback that makes every thread wait for the others inside fit."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=30)

    def on_epoch_end(self, epoch, logs):
        self.barrier.wait()


def test_six_threads_fitting_at_once_make_six_complete_runs(toy):
    fw = toy.import_framework()
    toy.autolog()
    meeting = Rendezvous(6)
    models = [fw.Model() for _ in range(6)]

    def work(i: int) -> None:
        models[i].fit([i, i + 1], epochs=2, callbacks=[meeting])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    found = runs()
    assert len(found) == 6
    assert {r.status for r in found} == {"FINISHED"}
    assert sorted(r.metrics["coef"] for r in found) == [i + 0.5 for i in range(6)]
    for run in found:
        assert run.params == {"model": "Model", "epochs": "2"}
        assert len(autotrack.get_metric_history(run.run_id, "loss")) == 2


@pytest.mark.parametrize("backend", ["threadpool", "joblib", "thread"])
def test_thread_pools_inside_a_recorded_call_stay_inside_it(toy, backend):
    if backend == "joblib":
        pytest.importorskip("joblib")
    fw = toy.import_framework()
    toy.autolog()
    search = fw.Search(candidates=6, backend=backend)
    assert search.fit([1, 2, 3]) is search
    assert search.results_ == [2.0] * 6
    assert [r.run_name for r in runs()] == ["Search-fit"]


def test_without_context_carrying_pool_tasks_would_record_on_their_own(toy):
    """The test above can fail: take the context patches away and each fold records."""
    fw = toy.import_framework()
    toy.autolog()
    autolog_module._context_patches.revert_all()
    fw.Search(candidates=3, backend="threadpool").fit([1, 2])
    assert sorted(r.run_name for r in runs()) == ["Model-fit"] * 3 + ["Search-fit"]


def test_pool_tasks_submitted_outside_a_call_record_normally(toy):
    fw = toy.import_framework()
    toy.autolog()
    with ThreadPoolExecutor(3) as pool:
        fw.Search(candidates=2, backend="sequential").fit([1])  # workers not started yet
        list(pool.map(lambda x: fw.Model().fit([x]), [1, 2, 3]))
    assert sorted(r.run_name for r in runs()) == ["Model-fit"] * 3 + ["Search-fit"]


def test_wrapped_methods_keep_signature_name_doc_and_inspect(toy):
    fw = toy.import_framework()
    before = {
        "signature": inspect.signature(fw.Model.fit),
        "bound": inspect.signature(fw.Model().fit),
        "doc": fw.Base.fit.__doc__,
        "source": inspect.getsource(fw.Base.fit),
        "score": inspect.signature(fw.metrics.score),
    }
    toy.autolog()
    assert type(vars(fw.Base)["fit"]).__name__ == "PatchWrapper"
    assert inspect.signature(fw.Model.fit) == before["signature"]
    assert inspect.signature(fw.Model().fit) == before["bound"]
    assert inspect.signature(fw.metrics.score) == before["score"]
    assert fw.Base.fit.__name__ == "fit" and fw.Base.fit.__qualname__ == "Base.fit"
    assert fw.Base.fit.__doc__ == before["doc"]
    assert inspect.getsource(fw.Base.fit) == before["source"]
    assert inspect.isfunction(vars(fw.Base)["fit"]) and inspect.ismethod(fw.Model().fit)
    assert fw.metrics.score.__module__ == f"{toy.name}.metrics"


# -- real scikit-learn: a search's folds on joblib's threading backend ---------------------------
class SklearnFit(Hooks):
    def run_name(self, call):
        return type(call.instance).__name__

    def after(self, call, result):
        call.run.log_param("estimator", type(call.instance).__name__)


class SklearnProbe(Integration):
    name = "sklearn_threads_probe"

    def targets(self, module):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection._search import BaseSearchCV

        hooks = SklearnFit()
        return [
            PatchTarget(LogisticRegression, "fit", hooks),
            PatchTarget(BaseSearchCV, "fit", hooks),
        ]


@pytest.fixture
def sklearn_probe():
    pytest.importorskip("sklearn")
    import sklearn  # noqa: F401 (imported first: autolog patches at once)

    info = IntegrationInfo(SklearnProbe.name, "x", ("sklearn",), "scikit-learn", ">=1", ())
    autolog = make_autolog(SklearnProbe(), info)
    autolog()
    yield autolog


def grid_search():
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0, 10.0]}, cv=3, n_jobs=2)
    with joblib.parallel_backend("threading", n_jobs=2):
        return search.fit(X, y)


def test_grid_search_on_joblibs_threading_backend_is_one_run(sklearn_probe):
    search = grid_search()
    assert search.best_params_["C"] in (0.1, 1.0, 10.0)
    assert [(r.run_name, r.params) for r in runs()] == [
        ("GridSearchCV", {"estimator": "GridSearchCV"})
    ]


def test_two_user_threads_searching_at_once_make_two_runs(sklearn_probe):
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: grid_search(), range(2)))
    assert sorted(r.run_name for r in runs()) == ["GridSearchCV", "GridSearchCV"]


def test_grid_search_folds_would_record_without_context_carrying(sklearn_probe):
    autolog_module._context_patches.revert_all()
    grid_search()
    names = [r.run_name for r in runs()]
    assert names.count("GridSearchCV") == 1 and names.count("LogisticRegression") >= 9
