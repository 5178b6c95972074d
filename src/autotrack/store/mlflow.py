"""The MLflow backend: autotrack's store interface on an MLflow tracking server.

Select it with a tracking URI: `mlflow+http://host:5000`, `mlflow+sqlite:///path.db`, or
`mlflow:` (MLflow's own `MLFLOW_TRACKING_URI`). Runs, nested runs (`mlflow.parentRunId`),
params, metric histories, tags (with MLflow's source tags) and artifacts appear in MLflow as
MLflow users expect; model directories gain an `MLmodel` file (see `mlflow_models`).

Writes never wait for the server. A run is created on the server at once when it answers
(its id is then MLflow's run id); otherwise it gets a local id and is created later, found
again by its idempotency key tag `autotrack.run_key` so that no retry creates it twice.
Everything else goes through the `Outbox` (bounded queue, batched `log_batch` calls, retry
with backoff, spill to an embedded store, drained at exit); `autotrack sync` pushes spills.

Settings (environment): AUTOTRACK_SPILL_DIR (./autotrack-runs/mlflow-spill),
AUTOTRACK_MLFLOW_MAX_QUEUED (100000 records in memory), AUTOTRACK_FLUSH_INTERVAL (1 s between
batches), AUTOTRACK_MLFLOW_TIMEOUT (30 s per request from the sender thread),
AUTOTRACK_MLFLOW_QUICK_TIMEOUT (5 s for the calls made on the user's thread: creating a run or
an experiment), AUTOTRACK_MLFLOW_FLUSH_TIMEOUT (30 s: how long `end_run` and reads wait for
delivery), AUTOTRACK_MLFLOW_EXIT_TIMEOUT (10 s of draining at exit before spilling).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.search import FilterError, Query
from autotrack.store import mlflow_models
from autotrack.store.mlflow_delivery import Delivery, RunState
from autotrack.store.mlflow_mapping import (
    PARENT_TAG,
    mlflow_metric_key,
    mlflow_tags,
    to_mlflow_filter,
    to_mlflow_order_by,
    tracking_uri_of,
)
from autotrack.store.mlflow_queue import (
    Artifact,
    Ensure,
    Finish,
    MetricRow,
    Outbox,
    Params,
    Tags,
)
from autotrack.store.mlflow_spill import Identity, Spill, default_spill_dir
from autotrack.store.mlflow_transport import (
    RUN_KEY_TAG,
    Rejected,
    RemoteRun,
    Transient,
    Transport,
    now_ms,
    open_transport,
)
from autotrack.store.naming import generated_run_name

_PLAIN_KEY = re.compile(r"[\w.\-/ :]*")  # keys MLflow accepts as they are

_PENDING_EXPERIMENT = "pending:"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class MlflowStore:
    """Store protocol over MLflow; see the module docstring for the delivery guarantees."""

    def __init__(
        self,
        uri: str,
        *,
        spill_dir: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri_of(uri)
        self.transport = transport or open_transport(self.tracking_uri)
        self.spill = Spill(Path(spill_dir) if spill_dir else default_spill_dir())
        self.flush_timeout = _env_float("AUTOTRACK_MLFLOW_FLUSH_TIMEOUT", 30.0)
        self.exit_timeout = _env_float("AUTOTRACK_MLFLOW_EXIT_TIMEOUT", 10.0)
        self.delivery = Delivery(self.transport, self.spill, uri)
        self.outbox = Outbox(
            self.delivery.send,
            self.delivery.spill_items,
            max_records=int(_env_float("AUTOTRACK_MLFLOW_MAX_QUEUED", 100_000)),
            interval=_env_float("AUTOTRACK_FLUSH_INTERVAL", 1.0),
        )
        self._runs = self.delivery.runs
        self._exp_ids = self.delivery.experiment_ids
        self._exp_names = self.delivery.experiment_names
        self._downloads = Path(tempfile.mkdtemp(prefix="autotrack-mlflow-downloads-"))
        self._closed = False

    def __repr__(self) -> str:
        return f"MlflowStore({self.tracking_uri!r})"

    # -- experiments -----------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        if name in self._exp_ids:
            return Experiment(self._exp_ids[name], name, 0)
        if not self.outbox.backoff.waiting:
            try:
                with self.transport.quick():
                    return Experiment(self.delivery.remote_experiment(name), name, now_ms())
            except Transient:
                self.outbox.backoff.failed()
        placeholder = _PENDING_EXPERIMENT + name
        self._exp_names[placeholder] = name
        return Experiment(placeholder, name, now_ms())

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._read(lambda: self.transport.experiment_by_name(name))

    def list_experiments(self) -> list[Experiment]:
        return self._read(self.transport.list_experiments)

    # -- runs ------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None,
        tags: dict[str, str],
        parent_run_id: str | None,
        start_time: int,
    ) -> Run:
        key = uuid.uuid4().hex
        name = run_name or generated_run_name(key)
        parent = self._runs.get(parent_run_id) if parent_run_id else None
        identity = Identity(
            key=key,
            target=self.uri,
            experiment_name=self._experiment_name(experiment_id),
            run_name=name,
            start_time=start_time,
            tags=mlflow_tags(tags),
            parent_key=parent.identity.key if parent and parent.identity else None,
        )
        if parent_run_id and parent is None:  # a run this process did not create
            identity.tags[PARENT_TAG] = parent_run_id
        remote = self._create_now(identity, parent)
        run_id = remote.run_id if remote else key
        identity.remote_id = remote.run_id if remote else None
        state = RunState(
            run_id, identity, experiment_id, parent_run_id, remote, tags=dict(identity.tags)
        )
        self._runs[run_id] = state
        if remote is None:
            self.outbox.put(Ensure(run_id))
        return state.snapshot()

    def _create_now(self, identity: Identity, parent: RunState | None) -> RemoteRun | None:
        """Create the run on the server now if it is answering and the run's parent and
        experiment exist there; None means "later, from the outbox"."""
        if self.outbox.backoff.waiting or (parent is not None and parent.remote is None):
            return None
        tags = {**identity.tags, RUN_KEY_TAG: identity.key}
        if parent is not None and parent.remote is not None:
            tags[PARENT_TAG] = parent.remote.run_id
        try:
            with self.transport.quick():
                experiment_id = self.delivery.remote_experiment(identity.experiment_name)
                return self.transport.create_run(
                    experiment_id, identity.run_name, identity.start_time, tags
                )
        except Transient:
            self.outbox.backoff.failed()
            return None

    def _experiment_name(self, experiment_id: str) -> str:
        if experiment_id not in self._exp_names:
            for experiment in self.list_experiments():
                self._exp_names.setdefault(experiment.experiment_id, experiment.name)
        if experiment_id not in self._exp_names:
            raise KeyError(f"no experiment with id {experiment_id!r} at {self.tracking_uri}")
        return self._exp_names[experiment_id]

    def finish_run(self, run_id: str, status: RunStatus, end_time: int) -> None:
        state = self.delivery.state(run_id)
        state.status, state.end_time = RunStatus(status), end_time
        self.outbox.put(Finish(run_id, RunStatus(status), end_time))
        self.outbox.flush(self.flush_timeout)

    def get_run(self, run_id: str) -> Run:
        self._read_flush()
        state = self._runs.get(run_id)
        remote_id = self.delivery.remote_id(run_id)
        if remote_id is None and state is not None:
            return state.snapshot()
        try:
            run = self.transport.get_run(remote_id or run_id)
        except Transient as exc:
            if state is not None:
                return state.snapshot()
            raise ConnectionError(self._unreachable(exc)) from exc
        except Rejected as exc:
            raise KeyError(f"no run with id {run_id!r} at {self.tracking_uri}") from exc
        return self._localize(run)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None,
        query: Query,
        order_by: Sequence[str] | None,
        max_results: int,
    ) -> list[Run]:
        self._read_flush()
        filter_string, include, exclude = to_mlflow_filter(query)
        order = to_mlflow_order_by(order_by)

        def search() -> list[Run]:
            found: list[str | None]
            if experiment_ids is None:
                found = [e.experiment_id for e in self.transport.list_experiments()]
            else:
                found = [self._server_experiment_id(e) for e in experiment_ids]
            ids = [i for i in found if i and i not in exclude and (include is None or i in include)]
            if not ids:
                return []
            try:
                runs = self.transport.search_runs(ids, filter_string, order, max_results)
            except Rejected as exc:
                raise FilterError(f"MLflow cannot run this search: {exc}") from exc
            return [self._localize(r) for r in runs]

        return self._read(search)

    def _server_experiment_id(self, experiment_id: str) -> str | None:
        if experiment_id.startswith(_PENDING_EXPERIMENT):
            name = self._exp_names.get(experiment_id, experiment_id[len(_PENDING_EXPERIMENT) :])
            found = self.transport.experiment_by_name(name)
            return found.experiment_id if found else None
        return experiment_id

    def _localize(self, run: Run) -> Run:
        """Report runs by the ids this process handed out (a run created while the server was
        away keeps its local id here; MLflow knows it by MLflow's id)."""
        from dataclasses import replace

        run_id = self.delivery.local_ids.get(run.run_id, run.run_id)
        parent = self.delivery.local_ids.get(run.parent_run_id or "", run.parent_run_id)
        if run_id == run.run_id and parent == run.parent_run_id:
            return run
        return replace(run, run_id=run_id, parent_run_id=parent)

    # -- data ------------------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        keep_existing: bool = False,
    ) -> None:
        state = self.delivery.state(run_id)
        if params:
            for key, value in params.items():
                old = state.params.get(key)
                if old is not None and old != value and not keep_existing:
                    raise ValueError(
                        f"param '{key}' was already logged as {old!r} for run {run_id}; "
                        f"params are write-once and cannot change to {value!r}"
                    )
            new = {k: v for k, v in params.items() if k not in state.params}
            if new:
                state.params.update(new)
                self.outbox.put(Params(run_id, new))
        if tags:
            mapped = mlflow_tags(tags)
            state.tags.update(mapped)
            self.outbox.put(Tags(run_id, mapped))
        for metric in metrics:
            self.add_metric_row((run_id, metric.key, metric.value, metric.step, metric.timestamp))

    def add_metric_row(self, row: MetricRow) -> None:
        """The fast path of `log_metric`: a dict write and a queue append."""
        if not _PLAIN_KEY.fullmatch(row[1]):
            row = (row[0], mlflow_metric_key(row[1]), *row[2:])
        state = self._runs.get(row[0])
        if state is not None:
            state.metrics[row[1]] = row[2]
        self.outbox.put_row(row)

    def add_metric_rows(self, rows: Sequence[MetricRow]) -> None:
        """A batch of points from a streaming callback (XGBoost, LightGBM)."""
        for row in rows:
            self.add_metric_row(row)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._read_flush()
        remote_id = self.delivery.remote_id(run_id) or run_id
        return self._read(lambda: self.transport.metric_history(remote_id, key))

    # -- artifacts -------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None) -> None:
        """Stage a copy (the caller's file may be temporary), with an MLmodel added to every
        model directory in it, and queue the upload."""
        source = Path(local_path)
        if not source.exists():
            raise FileNotFoundError(f"cannot log artifact: no such file or folder {local_path!r}")
        staging = Path(tempfile.mkdtemp(prefix="autotrack-mlflow-"))
        staged = staging / (source.name or "artifact")
        if source.is_dir():
            shutil.copytree(source, staged)
            for model_dir in mlflow_models.model_dirs(staged):
                mlflow_models.add_mlflow_flavor(model_dir)
        else:
            shutil.copy2(source, staged)
        self.delivery.state(run_id)
        self.outbox.put(Artifact(run_id, staged, artifact_path or ""))

    def list_artifacts(self, run_id: str, path: str = "") -> list[FileInfo]:
        self._read_flush()
        remote_id = self.delivery.remote_id(run_id) or run_id
        return self._read(lambda: self.transport.list_artifacts(remote_id, path))

    def artifact_local_path(self, run_id: str, path: str = "") -> str:
        """Downloaded into a temporary folder first: MLflow's artifacts are remote."""
        self._read_flush()
        remote_id = self.delivery.remote_id(run_id) or run_id
        target = self._downloads / run_id
        return self._read(lambda: self.transport.download(remote_id, path, target))

    # -- lifecycle -------------------------------------------------------------------------------
    def flush(self) -> None:
        self.outbox.flush(self.flush_timeout)

    def _read_flush(self) -> None:
        """Reads see everything logged before them: one immediate attempt even in backoff."""
        self.outbox.flush(self.flush_timeout, force=True)

    def close(self) -> None:
        """Drain for a bounded time, spill the rest, say once how much is waiting."""
        if self._closed:
            return
        self._closed = True
        waiting = self.outbox.close(self.exit_timeout)
        self.spill.close()
        shutil.rmtree(self._downloads, ignore_errors=True)
        if waiting:
            warnings.warn(
                f"autotrack: {waiting} records for the MLflow server at {self.tracking_uri} are"
                f" waiting in {self.spill.folder}; run `autotrack sync` once it is reachable",
                RuntimeWarning,
                stacklevel=2,
            )

    # -- errors ----------------------------------------------------------------------------------
    def _read(self, fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except Transient as exc:
            raise ConnectionError(self._unreachable(exc)) from exc

    def _unreachable(self, exc: BaseException) -> str:
        return f"the MLflow server at {self.tracking_uri} cannot be reached ({exc})"
