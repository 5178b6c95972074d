"""The MLflow backend's pure parts and its outbox, without a server: how queued records become
requests, what is retried, what is spilled, and how names map to MLflow's. (The end-to-end
behaviour against a real server is in test_mlflow_backend.py.)"""

from __future__ import annotations

import threading
import time

import pytest

from autotrack.entities import RunStatus
from autotrack.search import parse_filter
from autotrack.store.mlflow_mapping import (
    mlflow_tags,
    to_mlflow_filter,
    to_mlflow_order_by,
    tracking_uri_of,
)
from autotrack.store.mlflow_models import mlmodel
from autotrack.store.mlflow_queue import (
    Backoff,
    Ensure,
    Finish,
    Outbox,
    Params,
    Request,
    Tags,
    Unsure,
    plan,
    size,
)
from autotrack.store.mlflow_transport import Rejected, Transient


def rows(run_id: str, n: int, start: int = 0) -> list[tuple]:
    return [(run_id, "loss", float(i), i, 1000 + i) for i in range(start, start + n)]


# -- plan: what goes in each request --------------------------------------------------------------
def test_metric_points_are_grouped_up_to_a_thousand_per_request():
    requests = plan(rows("a", 2500))
    assert [len(r.metrics) for r in requests] == [1000, 1000, 500]
    sent = [(m.step, m.value, m.timestamp) for r in requests for m in r.metrics]
    assert sent == [(i, float(i), 1000 + i) for i in range(2500)]


def test_params_and_tags_are_split_at_a_hundred_and_none_is_lost():
    values = {f"p{i}": str(i) for i in range(250)}
    requests = plan([Params("a", values), Tags("a", {"t": "1"})])
    assert all(len(r.params) <= 100 and len(r.tags) <= 100 for r in requests)
    merged = {k: v for r in requests for k, v in r.params.items()}
    assert merged == values
    assert sum(size(i) for r in requests for i in r.items) == 251


def test_a_finish_goes_after_that_runs_data_and_other_runs_are_independent():
    items = [*rows("a", 3), *rows("b", 2), Finish("a", RunStatus.FINISHED, 5), *rows("b", 2, 2)]
    requests = plan(items)
    kinds = [(r.run_id, "finish" if r.op else len(r.metrics)) for r in requests]
    assert kinds.index(("a", 3)) < kinds.index(("a", "finish"))
    assert ("b", 4) in kinds  # b's points stay one batch around a's finish


def test_items_from_a_failed_attempt_mark_their_request_unsure():
    requests = plan([Unsure(row) for row in rows("a", 2)] + rows("b", 1))
    by_run = {r.run_id: r for r in requests}
    assert by_run["a"].unsure and not by_run["b"].unsure


# -- the outbox: retry, bound, spill, close -------------------------------------------------------
class Server:
    """Stands in for the transport: fails the first `failures` requests, records the rest."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[Request] = []
        self.lock = threading.Lock()

    def send(self, request: Request) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise Transient("connection refused")
            self.received.append(request)

    def points(self) -> list[int]:
        return [m.step for r in self.received for m in r.metrics]


def outbox(server: Server, spilled: list, **options) -> Outbox:
    options.setdefault("interval", 0.01)
    options.setdefault("backoff", Backoff(base=0.01, cap=0.05))
    return Outbox(server.send, spilled.extend, **options)


def test_failed_requests_are_retried_and_delivered_once_in_order():
    server, spilled = Server(failures=3), []
    box = outbox(server, spilled)
    for row in rows("a", 50):
        box.put_row(row)
    box.put(Finish("a", RunStatus.FINISHED, 99))
    deadline = time.monotonic() + 10
    while box.pending and time.monotonic() < deadline:
        box.flush(1, force=True)
    assert server.points() == list(range(50))
    assert server.received[-1].op == Finish("a", RunStatus.FINISHED, 99)
    assert any(r.unsure for r in server.received)  # the retried batch was marked
    assert spilled == []
    box.close(1)


def test_memory_stays_bounded_and_the_rest_is_spilled_while_the_server_is_down():
    server, spilled = Server(failures=10**9), []
    box = outbox(server, spilled, max_records=100)
    started = time.monotonic()
    for row in rows("a", 1000):
        box.put_row(row)
    assert time.monotonic() - started < 2  # the producer never waits for the server
    assert box.pending <= 101
    assert box.flush(5) is False or box.pending == 0  # returns promptly while down
    waiting = box.close(1)
    steps = sorted(i[3] for i in (x.item if isinstance(x, Unsure) else x for x in spilled))
    assert steps == list(range(1000))  # each point spilled exactly once
    assert waiting == 1000


def test_after_close_records_go_straight_to_the_spill():
    server, spilled = Server(), []
    box = outbox(server, spilled)
    box.close(1)
    box.put(Ensure("late"))
    box.put_row(("late", "x", 1.0, 0, 0))
    assert [size(i) for i in spilled] == [1, 1]


def test_rejected_requests_are_dropped_not_retried_forever():
    calls = []

    def send(request: Request) -> None:
        calls.append(request)
        raise Rejected("bad value", "INVALID_PARAMETER_VALUE")

    box = Outbox(send, lambda items: None, interval=0.01, backoff=Backoff(base=0.01))
    box.put(Params("a", {"p": "1"}))
    assert box.flush(5, force=True)
    assert len(calls) == 1 and box.pending == 0
    box.close(1)


def test_backoff_grows_and_is_capped():
    backoff = Backoff(base=1.0, cap=8.0)
    delays = []
    for _ in range(6):
        before = time.monotonic()
        backoff.failed()
        delays.append(backoff.retry_at - before)
    assert delays[0] == pytest.approx(1.0, rel=0.25)
    assert delays[3] == pytest.approx(8.0, rel=0.25)
    assert max(delays) <= 8.0 * 1.2 + 0.01
    backoff.succeeded()
    assert not backoff.waiting


# -- names ----------------------------------------------------------------------------------------
def test_tracking_uri_forms(monkeypatch):
    assert tracking_uri_of("mlflow+http://host:5000") == "http://host:5000"
    assert tracking_uri_of("mlflow+sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example")
    assert tracking_uri_of("mlflow:") == "https://mlflow.example"
    assert tracking_uri_of("mlflow") == "https://mlflow.example"
    with pytest.raises(ValueError, match="mlflow\\+http"):
        tracking_uri_of("mlflowish")


def test_filters_and_order_by_in_mlflow_syntax():
    query = parse_filter(
        "metrics.rmse < 1 and params.C = '1' and tags.team LIKE 'vis%' and status = 'FINISHED'"
        " and parent_run_id = 'abc' and experiment_id = '3'"
    )
    text, include, exclude = to_mlflow_filter(query)
    assert text == (
        "metrics.`rmse` < 1 and params.`C` = '1' and tags.`team` LIKE 'vis%'"
        " and attributes.status = 'FINISHED' and tags.`mlflow.parentRunId` = 'abc'"
    )
    assert include == {"3"} and exclude == set()
    assert to_mlflow_order_by(["metrics.rmse DESC", "start_time"]) == [
        "metrics.`rmse` DESC",
        "attributes.start_time ASC",
    ]


def test_autotrack_source_tags_get_their_mlflow_names():
    tags = mlflow_tags(
        {
            "autotrack.source.name": "/x/train.py",
            "autotrack.source.type": "SCRIPT",
            "autotrack.user": "ana",
            "autotrack.source.git_commit": "abc123",
            "autotrack.integration": "sklearn",
        }
    )
    assert tags["mlflow.source.name"] == "/x/train.py"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] == "ana"
    assert tags["mlflow.source.git.commit"] == "abc123"
    assert tags["mlflow.autologging"] == "sklearn"


# -- MLmodel --------------------------------------------------------------------------------------
def test_mlmodel_points_mlflow_at_the_files_autotrack_saved():
    sklearn = mlmodel(
        {"flavor": "sklearn", "model_file": "model.skops", "serialization_format": "skops",
         "framework_version": "1.5.0", "trusted_types": ["numpy.dtype"]}
    )  # fmt: skip
    assert sklearn["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert sklearn["flavors"]["python_function"]["model_path"] == "model.skops"
    assert sklearn["flavors"]["sklearn"]["skops_trusted_types"] == ["numpy.dtype"]
    assert sklearn["flavors"]["sklearn"]["serialization_format"] == "skops"

    xgb = mlmodel(
        {"flavor": "xgboost", "model_file": "model.ubj", "serialization_format": "ubj",
         "framework_version": "2.1.0", "model_class": "xgboost.sklearn.XGBClassifier"}
    )  # fmt: skip
    assert xgb["flavors"]["xgboost"]["model_class"] == "xgboost.sklearn.XGBClassifier"
    assert xgb["flavors"]["python_function"]["data"] == "model.ubj"

    keras = mlmodel(
        {"flavor": "keras", "model_file": "model.keras", "serialization_format": "keras"}
    )
    assert set(keras["flavors"]) == {"python_function"}
    assert keras["flavors"]["python_function"]["loader_module"] == "autotrack.store.mlflow_pyfunc"


def test_metric_keys_mlflow_refuses_are_spelled_its_way():
    from autotrack.store.mlflow_mapping import mlflow_metric_key

    assert mlflow_metric_key("validation_0-ndcg@5") == "validation_0-ndcg_at_5"
    assert mlflow_metric_key("train-rmse") == "train-rmse"
    assert mlflow_metric_key("a b/c:d.e") == "a b/c:d.e"
    assert mlflow_metric_key("loss(x)") == "loss_x_"
