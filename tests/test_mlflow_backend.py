"""The MLflow backend against a real `mlflow server` (SQLite backend, local artifact folder),
checked the way an MLflow user would: through `MlflowClient`, `mlflow.pyfunc` and the model
registry. Outages are real too: the server is killed (SIGKILL) and started again."""

from __future__ import annotations

import math
import socket
import time
import warnings
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

import autotrack  # noqa: E402
from autotrack import tracking  # noqa: E402
from autotrack.store.mlflow import MlflowStore  # noqa: E402
from autotrack.sync import export_runs, sync  # noqa: E402
from mlflow_server import MlflowServer, available  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not available(), reason="needs the full mlflow package (its server)"),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = MlflowServer(tmp_path_factory.mktemp("mlflow-shared")).start()
    yield running
    running.kill()


@pytest.fixture
def own_server(tmp_path):
    """A server this test may kill and restart."""
    running = MlflowServer(tmp_path / "mlflow-own").start()
    yield running
    running.kill()


@pytest.fixture(autouse=True)
def quick_outages(monkeypatch, tmp_path):
    """Spill into the test's folder; do not wait long at close for a server that is down."""
    monkeypatch.setenv("AUTOTRACK_SPILL_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("AUTOTRACK_MLFLOW_EXIT_TIMEOUT", "3")
    monkeypatch.setenv("AUTOTRACK_MLFLOW_TIMEOUT", "5")
    monkeypatch.setenv("AUTOTRACK_FLUSH_INTERVAL", "0.2")


@pytest.fixture
def mlflow_reads(server):
    """MLflow's own fluent API (pyfunc, registry) pointed at the test server."""
    mlflow.set_tracking_uri(server.uri)
    yield
    mlflow.set_tracking_uri(None)


def use(server_uri: str, experiment: str) -> None:
    autotrack.set_tracking_uri(f"mlflow+{server_uri}")
    autotrack.set_experiment(experiment)


def client(server: MlflowServer):
    return mlflow.tracking.MlflowClient(server.uri)


def runs_of(server: MlflowServer, experiment: str):
    found = client(server).get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment!r} is not in MLflow"
    return client(server).search_runs([found.experiment_id], max_results=1000)


def steps(server: MlflowServer, run_id: str, key: str) -> list[tuple[int, float]]:
    history = client(server).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in history)


def close_store() -> list[str]:
    """What a process exit does: drain briefly, spill the rest, warn once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracking.get_store().close()
    return [str(w.message) for w in caught if "autotrack sync" in str(w.message)]


# -- what MLflow users see --------------------------------------------------------------------
def test_runs_params_metrics_tags_and_nesting_appear_in_mlflow(server):
    use(server.uri, "basics")
    with autotrack.start_run(run_name="parent", tags={"team": "vision"}) as parent:
        autotrack.log_params({"lr": 0.1, "layers": 3})
        for step in range(5):
            autotrack.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_000 + step)
        autotrack.log_metric("nan_metric", float("nan"))
        autotrack.set_tag("stage", "dev")
        with autotrack.start_run(run_name="child", nested=True) as child:
            autotrack.log_metric("acc", 0.75)
    assert parent.run_id != child.run_id

    runs = {r.info.run_name: r for r in runs_of(server, "basics")}
    assert set(runs) == {"parent", "child"}
    top, nested = runs["parent"], runs["child"]
    assert top.info.run_id == parent.run_id  # autotrack's run id is MLflow's run id
    assert top.info.status == "FINISHED" and nested.info.status == "FINISHED"
    assert top.data.params == {"lr": "0.1", "layers": "3"}
    assert top.data.tags["team"] == "vision" and top.data.tags["stage"] == "dev"
    assert top.data.tags["mlflow.source.name"].endswith(".py")
    assert top.data.tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.user" in top.data.tags
    assert nested.data.tags["mlflow.parentRunId"] == parent.run_id
    history = client(server).get_metric_history(parent.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, 1.0 / (s + 1), 1_000 + s) for s in range(5)
    ]
    assert math.isnan(top.data.metrics["nan_metric"])
    assert nested.data.metrics == {"acc": 0.75}


def test_metric_points_go_in_batches_of_up_to_a_thousand(server):
    use(server.uri, "batching")
    before = server.requests_to("runs/log-batch")
    with autotrack.start_run() as run:
        for step in range(2500):
            autotrack.log_metric("loss", step * 0.5, step=step)
    sent = server.requests_to("runs/log-batch") - before
    assert steps(server, run.run_id, "loss") == [(s, s * 0.5) for s in range(2500)]
    assert 3 <= sent <= 10, f"{sent} log-batch requests for 2500 points"


def test_artifacts_are_uploaded_where_mlflow_lists_them(server, tmp_path):
    use(server.uri, "artifacts")
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    with autotrack.start_run() as run:
        autotrack.log_text("hello", "notes/hello.txt")
        autotrack.log_dict({"k": [1, 2]}, "config.json")
        autotrack.log_artifacts(folder, "report")
    listed = {f.path for f in client(server).list_artifacts(run.run_id)}
    assert listed == {"notes", "config.json", "report"}
    nested = {f.path for f in client(server).list_artifacts(run.run_id, "report/sub")}
    assert nested == {"report/sub/b.txt"}
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, tracking_uri=server.uri))
    assert (local / "notes" / "hello.txt").read_text() == "hello"
    assert (local / "report" / "a.txt").read_text() == "alpha"
    # and autotrack's own reads go through the server too
    assert Path(autotrack.artifact_path(run.run_id, "report/sub/b.txt")).read_text() == "beta"
    assert {f.path for f in autotrack.list_artifacts(run.run_id)} == listed


def test_search_and_reads_through_autotrack(server):
    use(server.uri, "search")
    for c in (0.1, 1.0, 10.0):
        with autotrack.start_run(run_name=f"C={c}"):
            autotrack.log_param("C", c)
            autotrack.log_metric("score", c / 10)
    found = autotrack.search_runs(["search"], "metrics.score > 0.05", ["metrics.score DESC"])
    assert [r.run_name for r in found] == ["C=10.0", "C=1.0"]
    assert [r.run_name for r in autotrack.search_runs(["search"], "params.C = '0.1'")] == ["C=0.1"]
    assert autotrack.get_run(found[0].run_id).params == {"C": "10.0"}


def test_params_are_write_once(server):
    use(server.uri, "params")
    with autotrack.start_run():
        autotrack.log_param("alpha", 1)
        autotrack.log_param("alpha", 1)  # the same value again is fine
        with pytest.raises(ValueError, match="alpha"):
            autotrack.log_param("alpha", 2)


def test_mlflow_pyfunc_and_registry_load_an_autotrack_sklearn_model(
    server, mlflow_reads, monkeypatch
):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    # MLflow >= 3.x deserializes no scikit-learn model (not even skops) without this consent
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    use(server.uri, "models")
    with autotrack.start_run() as run:
        autotrack.log_model(model, "model", X=X)
    uri = f"runs:/{run.run_id}/model"
    pyfunc = mlflow.pyfunc.load_model(uri)
    assert (pyfunc.predict(X) == model.predict(X)).all()
    assert (mlflow.sklearn.load_model(uri).predict_proba(X) == model.predict_proba(X)).all()
    version = mlflow.register_model(uri, "autotrack-iris")
    registered = mlflow.pyfunc.load_model(f"models:/autotrack-iris/{version.version}")
    assert (registered.predict(X) == model.predict(X)).all()
    # the same directory still loads with autotrack, checksums intact
    assert (autotrack.load_model(uri).predict(X) == model.predict(X)).all()


def test_mlflow_sqlite_uri_without_a_server(tmp_path, monkeypatch):
    """`mlflow+sqlite:///...` writes through MLflow's own client and store."""
    pytest.importorskip("sqlalchemy")
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts in ./mlruns next to a SQLite store
    db = f"sqlite:///{tmp_path / 'local.db'}"
    use(db, "no-server")
    with autotrack.start_run(run_name="direct") as run:
        autotrack.log_params({"k": 3})
        for step in range(3):
            autotrack.log_metric("m", step * 1.5, step=step)
        autotrack.log_text("t", "t.txt")
        with autotrack.start_run(run_name="inner", nested=True):
            pass
    reader = mlflow.tracking.MlflowClient(db)
    experiment = reader.get_experiment_by_name("no-server")
    runs = {r.info.run_name: r for r in reader.search_runs([experiment.experiment_id])}
    assert runs["direct"].info.run_id == run.run_id
    assert runs["direct"].data.params == {"k": "3"}
    assert [(m.step, m.value) for m in reader.get_metric_history(run.run_id, "m")] == [
        (0, 0.0), (1, 1.5), (2, 3.0)
    ]  # fmt: skip
    assert runs["inner"].data.tags["mlflow.parentRunId"] == run.run_id
    assert [f.path for f in reader.list_artifacts(run.run_id)] == ["t.txt"]


# -- outages -------------------------------------------------------------------------------------
def test_server_down_from_the_start_then_sync(tmp_path):
    down = MlflowServer(tmp_path / "later")  # not started yet: nothing listens on its port
    use(down.uri, "offline")
    started = time.monotonic()
    with autotrack.start_run(run_name="offline-run") as run:
        autotrack.log_params({"depth": 4})
        for step in range(300):
            autotrack.log_metric("loss", 1.0 / (step + 1), step=step)
        autotrack.log_text("kept", "notes.txt")
    assert time.monotonic() - started < 10, "training waited for an absent server"
    messages = close_store()
    assert len(messages) == 1 and "records" in messages[0]
    assert "304" in messages[0]  # the run, 300 points, 1 param, the file and its end

    down.start()
    try:
        report = sync()
        assert report.ok, str(report)
        assert report.created == 1 and report.metrics == 300
        (mlflow_run,) = runs_of(down, "offline")
        assert mlflow_run.info.run_name == "offline-run"
        assert mlflow_run.data.tags["autotrack.run_key"] == run.run_id  # its local id
        assert mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.params == {"depth": "4"}
        assert steps(down, mlflow_run.info.run_id, "loss") == [
            (s, 1.0 / (s + 1)) for s in range(300)
        ]
        assert [f.path for f in client(down).list_artifacts(mlflow_run.info.run_id)] == [
            "notes.txt"
        ]
        again = sync()
        assert again.runs == 0 and again.metrics == 0  # already synced: nothing sent
        assert len(runs_of(down, "offline")) == 1
    finally:
        down.kill()


def test_a_server_that_never_answers_does_not_stall_training(monkeypatch):
    """A listening socket that accepts connections and never replies: the slow-server case."""
    monkeypatch.setenv("AUTOTRACK_MLFLOW_QUICK_TIMEOUT", "1")  # calls on the training thread
    monkeypatch.setenv("AUTOTRACK_MLFLOW_TIMEOUT", "60")  # the sender's calls
    monkeypatch.setenv("AUTOTRACK_MLFLOW_FLUSH_TIMEOUT", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        use(f"http://127.0.0.1:{silent.getsockname()[1]}", "silent")
        started = time.monotonic()
        with autotrack.start_run() as run:
            for step in range(200):
                autotrack.log_metric("loss", float(step), step=step)
        assert time.monotonic() - started < 8, "training waited for a server that never answers"
        assert autotrack.get_run(run.run_id).metrics == {"loss": 199.0}  # read from the snapshot
        messages = close_store()
    assert len(messages) == 1


def test_server_killed_mid_training_and_restarted_nothing_lost_or_doubled(own_server):
    use(own_server.uri, "crash")
    with autotrack.start_run(run_name="trainer") as parent:
        autotrack.log_params({"epochs": 200})
        child = autotrack.start_run(run_name="fold-0", nested=True)
        for step in range(200):
            if step == 80:
                own_server.kill()
                killed_at = time.monotonic()
            parent.log_metric("loss", 1.0 / (step + 1), step=step)
            child.log_metric("fold_loss", step * 2.0, step=step)
            time.sleep(0.005)
        assert time.monotonic() - killed_at < 15, "training was blocked by the outage"
        autotrack.end_run()  # the child
        autotrack.set_tag("finished_epochs", 200)
        autotrack.log_text("summary", "summary.txt")
    messages = close_store()
    assert len(messages) == 1

    own_server.start()
    report = sync()
    assert report.ok, str(report)
    runs = {r.info.run_name: r for r in runs_of(own_server, "crash")}
    assert set(runs) == {"trainer", "fold-0"}  # no run created twice
    top, fold = runs["trainer"], runs["fold-0"]
    assert top.info.run_id == parent.run_id
    assert fold.data.tags["mlflow.parentRunId"] == top.info.run_id
    assert steps(own_server, top.info.run_id, "loss") == [(s, 1.0 / (s + 1)) for s in range(200)]
    assert steps(own_server, fold.info.run_id, "fold_loss") == [(s, s * 2.0) for s in range(200)]
    assert top.data.tags["finished_epochs"] == "200"
    assert top.info.status == "FINISHED" and fold.info.status == "FINISHED"
    assert [f.path for f in client(own_server).list_artifacts(top.info.run_id)] == ["summary.txt"]

    again = sync()
    assert again.metrics == 0
    assert len(runs_of(own_server, "crash")) == 2
    assert len(client(own_server).get_metric_history(top.info.run_id, "loss")) == 200


def test_autologged_xgboost_survives_a_server_crash_mid_training(own_server):
    xgb = pytest.importorskip("xgboost")
    from sklearn.datasets import load_breast_cancer

    class CrashServer(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if epoch == 20:
                own_server.kill()
            return False

    X, y = load_breast_cancer(return_X_y=True)
    dtrain = xgb.DMatrix(X, label=y)
    use(own_server.uri, "xgb-crash")
    autotrack.xgboost.autolog()
    evals_result: dict = {}
    try:
        xgb.train(
            {"objective": "binary:logistic", "eval_metric": "logloss"}, dtrain,
            num_boost_round=100, evals=[(dtrain, "train")], evals_result=evals_result,
            verbose_eval=False, callbacks=[CrashServer()],
        )  # fmt: skip
    finally:
        autotrack.xgboost.autolog(disable=True)
    tracking.flush()
    assert len(close_store()) == 1

    own_server.start()
    assert sync().ok
    (run,) = runs_of(own_server, "xgb-crash")
    assert run.info.status == "FINISHED"
    got = steps(own_server, run.info.run_id, "train-logloss")
    assert [s for s, _ in got] == list(range(100))  # every iteration, once
    assert [v for _, v in got] == pytest.approx(evals_result["train"]["logloss"])
    mlflow.set_tracking_uri(own_server.uri)
    try:
        assert (
            mlflow.xgboost.load_model(f"runs:/{run.info.run_id}/model").num_boosted_rounds() == 100
        )
    finally:
        mlflow.set_tracking_uri(None)


def test_queued_records_are_retried_when_the_server_comes_back(own_server):
    """No exit in between: the in-memory queue is retried with backoff, without sync."""
    use(own_server.uri, "retry")
    run = autotrack.start_run(run_name="patient")
    for step in range(50):
        autotrack.log_metric("m", float(step), step=step)
    autotrack.get_run(run.run_id)  # reads flush first: all 50 are on the server
    own_server.kill()
    for step in range(50, 120):
        autotrack.log_metric("m", float(step), step=step)
    time.sleep(1.5)  # the sender tries, fails, backs off
    own_server.start()
    history = autotrack.get_metric_history(run.run_id, "m")  # forces one attempt now
    assert sorted((m.step, m.value) for m in history) == [(s, float(s)) for s in range(120)]
    autotrack.end_run()
    assert steps(own_server, run.run_id, "m") == [(s, float(s)) for s in range(120)]
    assert close_store() == []  # nothing left waiting


def test_memory_bound_spills_while_the_server_is_down(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_MLFLOW_MAX_QUEUED", "100")
    down = MlflowServer(tmp_path / "later")
    use(down.uri, "bounded")
    with autotrack.start_run():
        for step in range(1000):
            autotrack.log_metric("x", float(step), step=step)
        store = tracking.get_store()
        assert isinstance(store, MlflowStore)
        assert store.outbox.pending <= 101  # never more than the bound in memory
        assert store.outbox.spilled_records >= 900
    close_store()
    down.start()
    try:
        assert sync().ok
        (run,) = runs_of(down, "bounded")
        assert steps(down, run.info.run_id, "x") == [(s, float(s)) for s in range(1000)]
    finally:
        down.kill()


# -- export ---------------------------------------------------------------------------------------
def test_export_copies_embedded_runs_and_is_idempotent(server, store_uri):
    autotrack.set_experiment("exported")
    with autotrack.start_run(run_name="outer") as outer:
        autotrack.log_params({"a": 1})
        for step in range(30):
            autotrack.log_metric("loss", step / 10, step=step)
        autotrack.log_text("x", "files/x.txt")
        with autotrack.start_run(run_name="inner", nested=True):
            autotrack.log_metric("acc", 0.9)
    with autotrack.start_run(run_name="other"):
        autotrack.log_param("a", 2)
    tracking.flush()

    first = export_runs(store_uri, server.uri, filter_string="params.a = '1'")
    assert first.ok, str(first)
    runs = {r.info.run_name: r for r in runs_of(server, "exported")}
    assert set(runs) == {"outer"}  # the filter chose one run
    assert steps(server, runs["outer"].info.run_id, "loss") == [(s, s / 10) for s in range(30)]
    assert runs["outer"].data.tags["autotrack.run_key"] == outer.run_id

    export_runs(store_uri, f"mlflow+{server.uri}")
    second = export_runs(store_uri, server.uri)
    assert second.created == 0 and second.metrics == 0 and second.params == 0
    runs = {r.info.run_name: r for r in runs_of(server, "exported")}
    assert sorted(runs) == ["inner", "other", "outer"]
    assert runs["inner"].data.tags["mlflow.parentRunId"] == runs["outer"].info.run_id
    assert len(client(server).get_metric_history(runs["outer"].info.run_id, "loss")) == 30
    assert [f.path for f in client(server).list_artifacts(runs["outer"].info.run_id, "files")] == [
        "files/x.txt"
    ]


# -- autologged frameworks -----------------------------------------------------------------------
def test_autologged_sklearn_search_parent_and_children(server, mlflow_reads, monkeypatch):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :5]
    use(server.uri, "sklearn-search")
    autotrack.sklearn.autolog()
    try:
        search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0, 10.0]}, cv=3)
        search.fit(X, y)
    finally:
        autotrack.sklearn.autolog(disable=True)
    tracking.flush()

    runs = runs_of(server, "sklearn-search")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "GridSearchCV"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.metrics["best_score"] == pytest.approx(search.best_score_)
    assert parent.data.tags["mlflow.autologging"] == "sklearn"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 == len(runs) - 1
    results = search.cv_results_
    for child in children:
        i = int(child.data.tags["candidate_index"])
        assert child.data.params["C"] == str(results["params"][i]["C"])
        assert child.data.metrics["mean_test_score"] == pytest.approx(results["mean_test_score"][i])
        folds = client(server).get_metric_history(child.info.run_id, "test_score")
        assert sorted(m.step for m in folds) == [0, 1, 2]
    # the best estimator, logged by autotrack, is an MLflow model
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    assert (pyfunc.predict(X) == search.predict(X)).all()


def test_autologged_xgboost_per_iteration_metrics(server, mlflow_reads):
    xgb = pytest.importorskip("xgboost")
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
    dtrain, dvalid = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)
    use(server.uri, "xgboost")
    autotrack.xgboost.autolog()
    evals_result: dict = {}
    try:
        booster = xgb.train(
            {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 3},
            dtrain, num_boost_round=40, evals=[(dtrain, "train"), (dvalid, "valid")],
            evals_result=evals_result, verbose_eval=False,
        )  # fmt: skip
    finally:
        autotrack.xgboost.autolog(disable=True)
    tracking.flush()

    (run,) = runs_of(server, "xgboost")
    assert run.info.status == "FINISHED"
    assert run.data.params["max_depth"] == "3" and run.data.params["num_boost_round"] == "40"
    for data_name in ("train", "valid"):
        for metric in ("logloss", "auc"):
            expected = list(enumerate(evals_result[data_name][metric]))
            got = steps(server, run.info.run_id, f"{data_name}-{metric}")
            assert [s for s, _ in got] == [s for s, _ in expected]
            assert [v for _, v in got] == pytest.approx([v for _, v in expected])
    loaded = mlflow.xgboost.load_model(f"runs:/{run.info.run_id}/model")
    assert (loaded.predict(dvalid) == booster.predict(dvalid)).all()


def test_autologged_keras_run(server, mlflow_reads):
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")

    rng = np.random.default_rng(0)
    X = rng.random((64, 4)).astype("float32")
    y = (X.sum(axis=1) > 2).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
         keras.layers.Dense(1, activation="sigmoid")]
    )  # fmt: skip
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    use(server.uri, "keras")
    autotrack.tensorflow.autolog()
    try:
        history = model.fit(X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    finally:
        autotrack.tensorflow.autolog(disable=True)
    tracking.flush()

    (run,) = runs_of(server, "keras")
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["batch_size"] == "16"
    for key, values in history.history.items():
        got = steps(server, run.info.run_id, key)
        assert [s for s, _ in got] == [0, 1, 2]
        assert [v for _, v in got] == pytest.approx(values, rel=1e-6)
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(X)).ravel(), model.predict(X, verbose=0).ravel(), rtol=1e-5
    )
