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
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.search import FilterError, Query
from autotrack.store import mlflow_models
from autotrack.store.mlflow_mapping import (
    PARENT_TAG,
    mlflow_tags,
    to_mlflow_filter,
    to_mlflow_order_by,
    tracking_uri_of,
)
from autotrack.store.mlflow_queue import (
    Artifact,
    Ensure,
    Finish,
    Item,
    MetricRow,
    Outbox,
    Params,
    Request,
    Tags,
    Unsure,
    run_of,
)
from autotrack.store.mlflow_spill import Identity, Spill, default_spill_dir, discard_staged
from autotrack.store.mlflow_transport import (
    RUN_KEY_TAG,
    Rejected,
    RemoteRun,
    Transient,
    Transport,
    ensure_experiment,
    ensure_run,
    missing_points,
    now_ms,
    open_transport,
)
from autotrack.store.sqlite import _generated_name

_PENDING_EXPERIMENT = "pending:"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class _RunState:
    """What this process knows about a run it writes: identity, and a snapshot to answer
    reads while the server is away."""

    run_id: str
    identity: Identity | None
    experiment_ref: str
    parent_run_id: str | None
    remote: RemoteRun | None = None
    status: RunStatus = RunStatus.RUNNING
    end_time: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> Run:
        ident = self.identity
        return Run(
            run_id=self.run_id,
            run_name=ident.run_name if ident else self.run_id,
            experiment_id=self.remote.experiment_id if self.remote else self.experiment_ref,
            status=self.status,
            start_time=ident.start_time if ident else 0,
            end_time=self.end_time,
            parent_run_id=self.parent_run_id,
            params=dict(self.params),
            metrics=dict(self.metrics),
            tags=dict(self.tags),
            artifact_uri=self.remote.artifact_uri if self.remote else "",
        )


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
        self.outbox = Outbox(
            self._send,
            self._spill,
            max_records=int(_env_float("AUTOTRACK_MLFLOW_MAX_QUEUED", 100_000)),
            interval=_env_float("AUTOTRACK_FLUSH_INTERVAL", 1.0),
        )
        self._runs: dict[str, _RunState] = {}
        self._local_ids: dict[str, str] = {}  # server id -> local id, for runs created late
        self._exp_ids: dict[str, str] = {}  # experiment name -> server id
        self._exp_names: dict[str, str] = {}  # server id or placeholder -> name
        self._resolve_lock = threading.RLock()
        self._downloads = Path(tempfile.mkdtemp(prefix="autotrack-mlflow-downloads-"))
        self._closed = False
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"MlflowStore({self.tracking_uri!r})"

    # -- experiments -----------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        if name in self._exp_ids:
            return Experiment(self._exp_ids[name], name, 0)
        if not self.outbox.backoff.waiting:
            try:
                return Experiment(self._remote_experiment(name), name, now_ms())
            except Transient:
                self.outbox.backoff.failed()
        placeholder = _PENDING_EXPERIMENT + name
        self._exp_names[placeholder] = name
        return Experiment(placeholder, name, now_ms())

    def _remote_experiment(self, name: str) -> str:
        if name not in self._exp_ids:
            experiment_id = ensure_experiment(self.transport, name)
            self._exp_ids[name] = experiment_id
            self._exp_names[experiment_id] = name
        return self._exp_ids[name]

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
        name = run_name or _generated_name(key)
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
        state = _RunState(
            run_id, identity, experiment_id, parent_run_id, remote, tags=dict(identity.tags)
        )
        self._runs[run_id] = state
        if remote is None:
            self.outbox.put(Ensure(run_id))
        return state.snapshot()

    def _create_now(self, identity: Identity, parent: _RunState | None) -> RemoteRun | None:
        """Create the run on the server now if it is answering and the run's parent and
        experiment exist there; None means "later, from the outbox"."""
        if self.outbox.backoff.waiting or (parent is not None and parent.remote is None):
            return None
        tags = {**identity.tags, RUN_KEY_TAG: identity.key}
        if parent is not None and parent.remote is not None:
            tags[PARENT_TAG] = parent.remote.run_id
        try:
            experiment_id = self._remote_experiment(identity.experiment_name)
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

    def _state(self, run_id: str) -> _RunState:
        state = self._runs.get(run_id)
        if state is None:  # a run created elsewhere: write to it by its server id
            state = self._runs.setdefault(run_id, _RunState(run_id, None, "", None))
        return state

    def finish_run(self, run_id: str, status: RunStatus, end_time: int) -> None:
        state = self._state(run_id)
        state.status, state.end_time = RunStatus(status), end_time
        self.outbox.put(Finish(run_id, RunStatus(status), end_time))
        self.outbox.flush(self.flush_timeout)

    def get_run(self, run_id: str) -> Run:
        self._read_flush()
        state = self._runs.get(run_id)
        remote_id = self._remote_id(run_id)
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
            if experiment_ids is None:
                ids = [e.experiment_id for e in self.transport.list_experiments()]
            else:
                ids = [self._server_experiment_id(e) for e in experiment_ids]
            ids = [i for i in ids if i and i not in exclude and (include is None or i in include)]
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

        run_id = self._local_ids.get(run.run_id, run.run_id)
        parent = self._local_ids.get(run.parent_run_id or "", run.parent_run_id)
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
    ) -> None:
        state = self._state(run_id)
        if params:
            for key, value in params.items():
                old = state.params.get(key)
                if old is not None and old != value:
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
            state.metrics[metric.key] = metric.value
            self.outbox.put_row((run_id, metric.key, metric.value, metric.step, metric.timestamp))

    def add_metric_row(self, row: MetricRow) -> None:
        """The fast path of `log_metric`: a dict write and a queue append."""
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
        remote_id = self._remote_id(run_id) or run_id
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
        self._state(run_id)
        self.outbox.put(Artifact(run_id, staged, artifact_path or ""))

    def list_artifacts(self, run_id: str, path: str = "") -> list[FileInfo]:
        self._read_flush()
        remote_id = self._remote_id(run_id) or run_id
        return self._read(lambda: self.transport.list_artifacts(remote_id, path))

    def artifact_local_path(self, run_id: str, path: str = "") -> str:
        """Downloaded into a temporary folder first: MLflow's artifacts are remote."""
        self._read_flush()
        remote_id = self._remote_id(run_id) or run_id
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

    # -- the sender's side -----------------------------------------------------------------------
    def _remote_id(self, run_id: str) -> str | None:
        state = self._runs.get(run_id)
        if state is None or state.identity is None:
            return run_id
        return state.remote.run_id if state.remote else None

    def _resolve(self, run_id: str) -> RemoteRun:
        """The server's run for `run_id`: created now (parent first) if it was created while
        the server was away, or found again by its key if that creation did happen."""
        state = self._state(run_id)
        if state.remote is not None:
            return state.remote
        with self._resolve_lock:
            if state.remote is not None:
                return state.remote
            identity = state.identity
            if identity is None:
                remote = self.transport.remote_run(run_id)
                if remote is None:
                    raise Rejected(
                        f"no run {run_id} at {self.tracking_uri}", "RESOURCE_DOES_NOT_EXIST"
                    )
                state.remote = remote
                return remote
            tags = dict(identity.tags)
            if state.parent_run_id and PARENT_TAG not in tags:
                tags[PARENT_TAG] = self._resolve(state.parent_run_id).run_id
            experiment_id = self._remote_experiment(identity.experiment_name)
            remote, _ = ensure_run(
                self.transport, experiment_id, identity.key, identity.run_name,
                identity.start_time, tags,
            )  # fmt: skip
            identity.remote_id = remote.run_id
            self._local_ids[remote.run_id] = run_id
            state.remote = remote
            return remote

    def _send(self, request: Request) -> None:
        """Deliver one planned request (runs on the sender thread)."""
        op = request.op
        try:
            remote = self._resolve(request.run_id)
            if op is None:
                metrics = request.metrics
                if request.unsure and metrics:
                    metrics = missing_points(self.transport, remote.run_id, metrics)
                self._log_batch(remote, metrics, request.params, request.tags)
            elif isinstance(op, Finish):
                self.transport.update_run(remote.run_id, op.status, op.end_time)
            elif isinstance(op, Artifact):
                self.transport.upload(remote, op.staged, op.artifact_path)
                discard_staged(op)
        except Rejected as exc:
            self._warn_once(f"rejected:{exc.code}", f"the MLflow server refused a write: {exc}")
            if isinstance(op, Artifact):
                discard_staged(op)
            raise
        except Transient:
            raise
        except Exception as exc:  # a bug here must not lose data: retried, then spilled
            self._warn_once(f"bug:{type(exc).__name__}", f"could not send to MLflow: {exc!r}")
            raise Transient(str(exc)) from exc

    def _log_batch(
        self, remote: RemoteRun, metrics: list[Metric], params: dict, tags: dict
    ) -> None:
        if not (metrics or params or tags):
            return
        try:
            self.transport.log_batch(remote.run_id, metrics, params, tags)
        except Rejected:
            parts = [p for p in ((metrics, {}, {}), ([], params, {}), ([], {}, tags)) if any(p)]
            if len(parts) == 1:
                raise
            for part in parts:  # lose only the part the server refuses
                try:
                    self.transport.log_batch(remote.run_id, *part)
                except Rejected as exc:
                    self._warn_once(f"rejected:{exc.code}", f"the MLflow server refused: {exc}")

    def _spill(self, items: list[Item]) -> None:
        """Write items to the spill store, grouped per run (the outbox's overflow and exit)."""
        groups: dict[str, dict] = {}
        for raw in items:
            item = raw.item if isinstance(raw, Unsure) else raw
            group = groups.setdefault(
                run_of(item),
                {"metrics": [], "params": {}, "tags": {}, "finish": None, "artifacts": []},
            )
            if isinstance(item, tuple):
                group["metrics"].append(Metric(item[1], item[2], item[3], item[4]))
            elif isinstance(item, Params):
                group["params"].update(item.values)
            elif isinstance(item, Tags):
                group["tags"].update(item.values)
            elif isinstance(item, Finish):
                group["finish"] = item
            elif isinstance(item, Artifact):
                group["artifacts"].append(item)
        for run_id, group in groups.items():
            self.spill.write(self._identity_for_spill(run_id), **group)

    def _identity_for_spill(self, run_id: str) -> Identity:
        state = self._state(run_id)
        if state.identity is not None:
            return state.identity
        return Identity(  # a run created elsewhere: `sync` finds it by its server id
            key=f"mlflow-run-{run_id}", target=self.uri, experiment_name="autotrack-spill",
            run_name=run_id, start_time=now_ms(), remote_id=run_id,
        )  # fmt: skip

    # -- errors ----------------------------------------------------------------------------------
    def _read(self, fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except Transient as exc:
            raise ConnectionError(self._unreachable(exc)) from exc

    def _unreachable(self, exc: BaseException) -> str:
        return f"the MLflow server at {self.tracking_uri} cannot be reached ({exc})"

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            from autotrack.safety import warn_once

            warn_once(f"mlflow:{key}", f"autotrack: {message}")
        except Exception:
            warnings.warn(f"autotrack: {message}", RuntimeWarning, stacklevel=2)
