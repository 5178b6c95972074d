"""The UI's JSON API over a store written with the real tracking API: what a user's page is
sent (values, order, folding, downsampled charts) and what hostile input gets back."""

from __future__ import annotations

import io
import json
import math
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from wsgiref.util import setup_testing_defaults

import pytest

pytest.importorskip("bottle")

import autotrack
from autotrack.entities import Run, RunStatus
from autotrack.ui import data
from autotrack.ui.downsample import downsample
from autotrack.ui.server import make_app, make_ui_server


class Client:
    """Calls the WSGI app in-process, as a browser on localhost would."""

    def __init__(self, uri: str, host: str = "127.0.0.1:5000") -> None:
        autotrack.flush()
        self.app = make_app(uri)
        self.host = host

    def request(self, url: str, /, method: str = "GET", **query):
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        route, _, qs = url.partition("?")
        environ = {"PATH_INFO": route, "QUERY_STRING": qs, "REQUEST_METHOD": method,
                   "HTTP_HOST": self.host, "wsgi.input": io.BytesIO()}  # fmt: skip
        setup_testing_defaults(environ)
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            seen["headers"] = {k.lower(): v for k, v in headers}

        body = b"".join(self.app(environ, start_response))
        return seen["status"], seen["headers"], body

    def json(self, url: str, /, expect: int = 200, **query):
        status, headers, body = self.request(url, **query)
        assert status == expect, body
        assert headers["content-type"].startswith("application/json")
        return json.loads(body)


def make_run(name, params=None, metrics=None, tags=None, nested=False, status="FINISHED"):
    run = autotrack.start_run(run_name=name, tags=tags, nested=nested)
    if params:
        run.log_params(params)
    for key, value in (metrics or {}).items():
        run.log_metric(key, value)
    return run


def finished(name, **kwargs):
    with make_run(name, **kwargs) as run:
        pass
    return run.run_id


def test_runs_view_filters_sorts_and_folds_children(store_uri):
    autotrack.set_experiment("iris")
    a = finished("tree-deep", params={"max_depth": "10"}, metrics={"accuracy": 0.95},
                 tags={"model_type": "tree"})  # fmt: skip
    finished("tree-shallow", params={"max_depth": "9"}, metrics={"accuracy": 0.85},
             tags={"model_type": "tree"})  # fmt: skip
    finished("linear", params={"C": "1"}, metrics={"accuracy": 0.97}, tags={"model_type": "linear"})
    with make_run("search", tags={"model_type": "search"}) as parent:
        children = [finished(f"fold-{i}", metrics={"accuracy": 0.9 + i / 100}, nested=True)
                    for i in range(3)]  # fmt: skip
    client = Client(store_uri)
    experiments = client.json("/api/experiments")
    iris = next(e for e in experiments if e["name"] == "iris")
    assert iris["last_run_time"] is not None

    got = client.json("/api/runs", experiment_id=iris["experiment_id"],
                      filter="metrics.accuracy > 0.9 and tags.model_type = 'tree'")  # fmt: skip
    assert [r["run_id"] for r in got["runs"]] == [a]
    assert got["runs"][0]["params"] == {"max_depth": "10"}
    assert got["runs"][0]["metrics"] == {"accuracy": 0.95}

    every = client.json("/api/runs", experiment_id=iris["experiment_id"])
    assert every["matched"] == 7 and every["total"] == 4
    search = next(r for r in every["runs"] if r["run_id"] == parent.run_id)
    assert sorted(c["run_id"] for c in search["children"]) == sorted(children)
    assert {c["key"] for c in every["columns"]["metrics"]} == {"accuracy"}
    assert every["any_running"] is False

    by_depth = client.json("/api/runs", experiment_id=iris["experiment_id"],
                           sort="params.max_depth", desc="1")  # fmt: skip
    names = [r["run_name"] for r in by_depth["runs"]]
    assert names[:2] == ["tree-deep", "tree-shallow"]  # 10 > 9 as numbers, not as text
    by_accuracy = client.json("/api/runs", experiment_id=iris["experiment_id"],
                              sort="metrics.accuracy")  # fmt: skip
    assert [r["run_name"] for r in by_accuracy["runs"]] == ["tree-shallow", "tree-deep", "linear",
                                                             "search"]  # fmt: skip

    page = client.json("/api/runs", experiment_id=iris["experiment_id"], offset=1, limit=2)
    assert page["offset"] == 1 and len(page["runs"]) == 2
    assert [r["run_id"] for r in page["runs"]] == [r["run_id"] for r in every["runs"][1:3]]


def test_runs_are_read_again_only_when_the_store_changed(store_uri):
    from autotrack.ui.runs_cache import StoreCache, watch_for

    first = finished("first")
    autotrack.flush()
    store = autotrack.tracking.get_store()
    cache = StoreCache(watch_for(autotrack.store.open_store(store_uri)))
    reads = []

    def search():
        reads.append(1)
        return store.search_runs(None, autotrack.search.Query(), None, 100)

    runs = cache.get("all", search)
    assert [r.run_id for r in runs] == [first] and len(reads) == 1
    assert cache.get("all", search) == runs and len(reads) == 1  # nothing written: memory
    second = finished("second")
    autotrack.flush()
    assert cache.peek("all") is None
    runs = cache.get("all", search)
    assert len(reads) == 2 and {r.run_id for r in runs} == {first, second}
    client = Client(store_uri)
    assert len(client.json("/api/runs")["runs"]) == 2
    third = finished("third")
    autotrack.flush()
    assert third in [r["run_id"] for r in client.json("/api/runs")["runs"]]


def test_a_growing_history_is_never_served_stale(store_uri):
    run = make_run("training")
    run.log_metric("loss", 1.0, step=0)
    client = Client(store_uri)
    get = {"run_id": run.run_id, "key": "loss"}
    assert client.json("/api/metric-history", **get)[run.run_id]["loss"]["total"] == 1
    run.log_metric("loss", 0.5, step=1)
    autotrack.flush()
    points = client.json("/api/metric-history", **get)[run.run_id]["loss"]["points"]
    assert [p[:2] for p in points] == [[0, 1.0], [1, 0.5]]
    autotrack.end_run()


def test_quick_first_page_then_the_full_answer(store_uri):
    with make_run("search") as parent:
        children = [finished(f"child-{i}", nested=True) for i in range(3)]
    newest = [finished(f"run-{i}") for i in range(5)][::-1]
    client = Client(store_uri)
    quick = client.json("/api/runs", quick="1", limit=3)
    assert quick["partial"] is True and quick["total"] is None
    assert {r["run_id"] for r in quick["runs"]} <= set(newest)
    full = client.json("/api/runs", limit=10)
    assert full["partial"] is False and full["total"] == 6 and full["matched"] == 9
    ids = [r["run_id"] for r in full["runs"]]
    assert ids[:3] == [r["run_id"] for r in quick["runs"]]  # the same rows, in the same order
    assert set(ids[:5]) == set(newest) and ids[5] == parent.run_id
    assert sorted(c["run_id"] for c in full["runs"][-1]["children"]) == sorted(children)
    again = client.json("/api/runs", quick="1", limit=10)
    assert again["partial"] is False and again["runs"] == full["runs"]  # cached: no shortcut
    sorted_quick = client.json("/api/runs", quick="1", sort="attributes.run_name", filter="")
    assert sorted_quick["partial"] is False  # a sort needs every run


def test_bad_filter_and_sort_are_answered_with_the_reason(store_uri):
    finished("one")
    client = Client(store_uri)
    error = client.json("/api/runs", expect=400, filter="metrics.acc > 'high'")
    assert "numeric" in error["error"]
    error = client.json("/api/runs", expect=400, sort="bogus.key")
    assert "cannot sort" in error["error"]
    assert "no API endpoint" in client.json("/api/nothing", expect=404)["error"]
    assert client.json("/api/runs/0123abcd", expect=404)["error"].startswith("no run")


def test_running_runs_are_reported_for_live_refresh(store_uri):
    run = make_run("training", metrics={"loss": 1.0})
    client = Client(store_uri)
    assert client.json("/api/runs")["any_running"] is True
    assert client.json(f"/api/runs/{run.run_id}")["status"] == "RUNNING"
    run.log_metric("loss", 0.5)
    autotrack.flush()
    assert client.json(f"/api/runs/{run.run_id}")["metrics"] == {"loss": 0.5}
    autotrack.end_run()
    assert client.json("/api/runs")["any_running"] is False


def test_hostile_values_come_back_escaped_and_intact(store_uri):
    script = "<script>window.pwned = 1</script>"
    name = '<img src=x onerror="alert(1)">'
    with autotrack.start_run(run_name=name, tags={"note": "a & b <b>"}) as run:
        autotrack.log_param("evil", script)
        autotrack.log_metric("nan_metric", float("nan"))
        autotrack.log_metric("inf_metric", float("inf"))
    client = Client(store_uri)
    for path in ("/api/runs", f"/api/runs/{run.run_id}", "/api/compare"):
        query = {"run_id": run.run_id} if path == "/api/compare" else {}
        status, headers, body = client.request(path, **query)
        assert status == 200
        assert b"<" not in body and b">" not in body  # inert even if read as HTML
        assert headers["x-content-type-options"] == "nosniff"
    got = client.json(f"/api/runs/{run.run_id}")
    assert got["run_name"] == name
    assert got["params"] == {"evil": script}
    assert got["tags"]["note"] == "a & b <b>"
    assert got["metrics"] == {"nan_metric": "NaN", "inf_metric": "Infinity"}
    status, headers, _ = client.request("/")
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]


def test_artifact_paths_cannot_leave_the_store(store_uri, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    with autotrack.start_run() as run:
        autotrack.log_text("hello", "notes/readme.txt")
    run_root = autotrack.artifact_path(run.run_id)
    os.symlink(secret, os.path.join(run_root, "notes", "link.txt"))
    client = Client(store_uri)
    base = f"/api/runs/{run.run_id}/artifacts"
    for path in (
        "../../runs.db",
        "notes/../../x",
        "/etc/passwd",
        "notes/link.txt",
        "..\\..\\runs.db",
    ):
        for suffix in ("/raw", "/preview", ""):
            status, _, body = client.request(base + suffix, path=path)
            assert status == 403, (path, suffix, body)
            assert b"secret" not in body and b"SQLite" not in body
    status, _, _ = client.request("/api/runs/../artifacts/raw", path="runs.db")
    assert status in (400, 404)
    status, _, _ = client.request("/api/runs/..%2F..%2Fx/artifacts/raw", path="runs.db")
    assert status in (400, 404)

    status, headers, body = client.request(base + "/raw", path="notes/readme.txt")
    assert status == 200 and body == b"hello"
    assert headers["content-security-policy"].startswith("sandbox")


def test_artifact_tree_and_previews(store_uri):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    with autotrack.start_run() as run:
        autotrack.log_text("y_true,y_pred\n1,1\n0,<b>1</b>\n", "tables/preds.csv")
        autotrack.log_dict({"C": 1.0, "kernel": "rbf"}, "config.json")
        figure = Figure(figsize=(2, 2))
        figure.subplots().plot([1, 2, 3])
        autotrack.log_figure(figure, "plots/curve.png")
    client = Client(store_uri)
    tree = client.json(f"/api/runs/{run.run_id}/artifacts", recursive="1")
    files = {e["path"]: e for e in tree["entries"]}
    assert {"tables", "tables/preds.csv", "config.json", "plots", "plots/curve.png"} <= set(files)
    assert files["tables"]["is_dir"] and files["config.json"]["size"] > 0
    top = client.json(f"/api/runs/{run.run_id}/artifacts")
    assert {e["path"] for e in top["entries"]} == {"tables", "config.json", "plots"}

    preview = f"/api/runs/{run.run_id}/artifacts/preview"
    table = client.json(preview, path="tables/preds.csv")
    assert table["kind"] == "table"
    assert table["rows"] == [["y_true", "y_pred"], ["1", "1"], ["0", "<b>1</b>"]]
    config = client.json(preview, path="config.json")
    assert config["kind"] == "json" and json.loads(config["text"]) == {"C": 1.0, "kernel": "rbf"}
    assert client.json(preview, path="plots/curve.png")["kind"] == "image"
    status, headers, body = client.request(f"/api/runs/{run.run_id}/artifacts/raw",
                                           path="plots/curve.png")  # fmt: skip
    assert status == 200 and headers["content-type"] == "image/png"
    assert body.startswith(b"\x89PNG")


def test_model_folder_shows_signature_and_a_snippet_that_loads_it(store_uri):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    with autotrack.start_run() as run:
        autotrack.log_model(model, "model", X=X[:5])
    client = Client(store_uri)
    (found,) = client.json(f"/api/runs/{run.run_id}/models")
    assert found["path"] == "model"
    assert found["descriptor"]["flavor"] == "sklearn"
    assert found["signature"]["inputs"][0]["shape"] == [-1, 4]
    assert f"runs:/{run.run_id}/model" in found["load"]
    scope: dict = {}
    exec(found["load"], scope)  # the snippet a user would paste
    assert (scope["model"].predict(X) == model.predict(X)).all()


def test_long_histories_are_downsampled_keeping_ends_and_extremes(store_uri):
    with autotrack.start_run() as run:
        for step in range(20_000):
            value = 1.0 / (step + 1)
            if step == 12_345:
                value = 50.0  # a spike a stride would miss
            if step == 7_000:
                value = -3.0
            autotrack.log_metric("loss", value, step=step)
        autotrack.log_metric("short", 1.0, step=0)
    client = Client(store_uri)
    got = client.json("/api/metric-history", run_id=run.run_id, key=["loss", "short"],
                      max_points=1000)  # fmt: skip
    loss = got[run.run_id]["loss"]
    assert loss["total"] == 20_000 and loss["downsampled"] is True
    assert len(loss["points"]) <= 1000
    steps = [p[0] for p in loss["points"]]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 19_999
    values = {p[0]: p[1] for p in loss["points"]}
    assert values[12_345] == 50.0 and values[7_000] == -3.0
    short = got[run.run_id]["short"]
    assert short["total"] == 1 and not short["downsampled"]
    assert [p[:2] for p in short["points"]] == [[0, 1.0]]
    detail = client.json(f"/api/runs/{run.run_id}")
    assert {m["key"]: m["count"] for m in detail["metric_keys"]} == {"loss": 20_000, "short": 1}


def test_compare_flags_the_values_that_differ(store_uri):
    a = finished("a", params={"lr": "0.1", "layers": "2"}, metrics={"rmse": 0.5})
    b = finished("b", params={"lr": "0.01", "layers": "2"}, metrics={"rmse": 0.4})
    client = Client(store_uri)
    got = client.json("/api/compare", run_id=[a, b])
    assert [r["run_name"] for r in got["runs"]] == ["a", "b"]
    rows = {(r["kind"], r["key"]): r for r in got["table"]}
    assert rows[("params", "lr")]["values"] == ["0.1", "0.01"] and rows[("params", "lr")]["differs"]
    assert rows[("params", "layers")]["differs"] is False
    assert rows[("metrics", "rmse")]["values"] == [0.5, 0.4]
    assert got["metric_counts"] == {a: {"rmse": 1}, b: {"rmse": 1}}
    assert "1 to 50" in client.json("/api/compare", expect=400)["error"]


def test_the_server_is_read_only_and_answers_only_localhost(store_uri):
    run_id = finished("kept")
    client = Client(store_uri)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, _, _ = client.request("/api/runs", method=method)
        assert status == 405
    rebound = Client(store_uri, host="attacker.example:5000")
    status, _, body = rebound.request("/api/runs")
    assert status == 403 and b"kept" not in body
    assert [r.run_id for r in autotrack.search_runs()] == [run_id]


def test_serves_over_http_on_a_free_port(store_uri):
    run_id = finished("over-http", metrics={"accuracy": 0.9})
    autotrack.flush()
    server = make_ui_server(store_uri, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(f"{base}/api/runs") as response:
            assert json.load(response)["runs"][0]["run_id"] == run_id
        with urllib.request.urlopen(f"{base}/") as response:
            assert b'src="/static/app.js"' in response.read()
        with urllib.request.urlopen(f"{base}/static/app.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/static/../server.py")
        assert missing.value.code in (400, 403, 404)
        endpoints = json.load(urllib.request.urlopen(f"{base}/api"))["endpoints"]
        assert {"/api/runs", "/api/metric-history", "/api/compare"} <= {
            e["path"] for e in endpoints
        }
    finally:
        server.shutdown()
        server.server_close()


# -- the pure parts ----------------------------------------------------------------------------
def _run(run_id, params=None, metrics=None, start=0, end=None, parent=None):
    return Run(run_id=run_id, run_name=run_id, experiment_id="0", status=RunStatus.FINISHED,
               start_time=start, end_time=end, parent_run_id=parent, params=params or {},
               metrics=metrics or {})  # fmt: skip


def test_sort_puts_missing_values_last_in_both_directions():
    runs = [_run("a", {"lr": "0.1"}), _run("b"), _run("c", {"lr": "1e-3"}), _run("d", {"lr": "x"})]
    up = [r.run_id for r in data.sort_runs(runs, "params.lr", descending=False)]
    down = [r.run_id for r in data.sort_runs(runs, "params.lr", descending=True)]
    assert up == ["c", "a", "d", "b"]
    assert down == ["d", "a", "c", "b"]
    timed = [_run("x", start=0, end=50), _run("y", start=0, end=10), _run("z", start=5)]
    assert [r.run_id for r in data.sort_runs(timed, "attributes.duration", False)] == [
        "y",
        "x",
        "z",
    ]


def test_fold_children_nests_only_under_parents_in_the_result_and_pages():
    runs = [
        _run("p"),
        _run("c1", parent="p"),
        _run("g", parent="c1"),
        _run("orphan", parent="gone"),
    ]
    total, rows = data.fold_children(runs)
    assert total == 2 and [r["run_id"] for r in rows] == ["p", "orphan"]
    assert rows[0]["children"][0]["run_id"] == "c1"
    assert rows[0]["children"][0]["children"][0]["run_id"] == "g"
    assert data.fold_children(runs, offset=1, limit=5) == (2, rows[1:])


def test_downsample_keeps_small_histories_and_bounds_long_ones():
    short = [(i, float(i), i) for i in range(10)]
    assert downsample(short, 100) == short
    noisy = [(i, math.sin(i / 50) + (5 if i == 4321 else 0), i) for i in range(100_000)]
    kept = downsample(noisy, 2000)
    assert len(kept) <= 2000 and kept[0] == noisy[0] and kept[-1] == noisy[-1]
    assert max(p[1] for p in kept) == max(p[1] for p in noisy)
    assert min(p[1] for p in kept) == min(p[1] for p in noisy)
    with pytest.raises(ValueError):
        downsample(noisy, 2)


def test_non_ascii_names_keys_and_paths_round_trip(store_uri):
    with autotrack.start_run(run_name="réseau-日本") as run:
        autotrack.log_metric("précision", 0.5, step=0)
        autotrack.log_metric("précision", 0.7, step=1)
        autotrack.log_text("über", "données/é.txt")
    client = Client(store_uri)
    got = client.json("/api/metric-history", run_id=run.run_id, key="précision")
    assert [p[1] for p in got[run.run_id]["précision"]["points"]] == [0.5, 0.7]
    found = client.json("/api/runs", filter="attributes.run_name = 'réseau-日本'")
    assert [r["run_name"] for r in found["runs"]] == ["réseau-日本"]
    preview = client.json(f"/api/runs/{run.run_id}/artifacts/preview", path="données/é.txt")
    assert preview["text"] == "über"
