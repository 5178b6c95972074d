"""The sender's side of the MLflow backend: what this process knows about its runs, and how a
planned request becomes server calls.

A run created while the server was away exists only here (`RunState.remote` is None) until
its first request is delivered: then it is created on the server, parent first, or found
again by its idempotency key if an earlier, uncertain attempt did create it. Batches that may
already have reached the server (`Request.unsure`) are sent without the points it has.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

from autotrack.entities import Metric, Run, RunStatus
from autotrack.store.mlflow_mapping import PARENT_TAG
from autotrack.store.mlflow_queue import Artifact, Finish, Item, Params, Request, Tags, Unsure
from autotrack.store.mlflow_queue import run_of as item_run
from autotrack.store.mlflow_spill import Identity, Spill, discard_staged
from autotrack.store.mlflow_transport import (
    Rejected,
    RemoteRun,
    Transient,
    Transport,
    ensure_experiment,
    ensure_run,
    missing_points,
    now_ms,
)


@dataclass
class RunState:
    """A run this process writes: its identity, where it is on the server (once known), and a
    snapshot that answers reads while the server is away."""

    run_id: str
    identity: Identity | None  # None: a run created elsewhere, known by its server id
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


class Delivery:
    """Runs, experiments and ids shared by the store (user threads) and the sender thread."""

    def __init__(self, transport: Transport, spill: Spill, uri: str) -> None:
        self.transport = transport
        self.spill = spill
        self.uri = uri
        self.runs: dict[str, RunState] = {}
        self.local_ids: dict[str, str] = {}  # server id -> local id, for runs created late
        self.experiment_ids: dict[str, str] = {}  # name -> server id
        self.experiment_names: dict[str, str] = {}  # server id or placeholder -> name
        self._lock = threading.RLock()
        self._warned: set[str] = set()

    # -- what is known ---------------------------------------------------------------------------
    def state(self, run_id: str) -> RunState:
        state = self.runs.get(run_id)
        if state is None:  # a run created elsewhere: written to by its server id
            state = self.runs.setdefault(run_id, RunState(run_id, None, "", None))
        return state

    def remote_id(self, run_id: str) -> str | None:
        """The server's id of a run; None while it exists only here."""
        state = self.runs.get(run_id)
        if state is None or state.identity is None:
            return run_id
        return state.remote.run_id if state.remote else None

    def remote_experiment(self, name: str) -> str:
        if name not in self.experiment_ids:
            experiment_id = ensure_experiment(self.transport, name)
            self.experiment_ids[name] = experiment_id
            self.experiment_names[experiment_id] = name
        return self.experiment_ids[name]

    def resolve(self, run_id: str) -> RemoteRun:
        """The server's run for `run_id`, created now (parent first) if it was created while
        the server was away, or found again by its key if that creation did happen."""
        state = self.state(run_id)
        if state.remote is not None:
            return state.remote
        with self._lock:
            if state.remote is not None:
                return state.remote
            identity = state.identity
            if identity is None:
                remote = self.transport.remote_run(run_id)
                if remote is None:
                    raise Rejected(f"no run {run_id} on the server", "RESOURCE_DOES_NOT_EXIST")
                state.remote = remote
                return remote
            tags = dict(identity.tags)
            if state.parent_run_id and PARENT_TAG not in tags:
                tags[PARENT_TAG] = self.resolve(state.parent_run_id).run_id
            experiment_id = self.remote_experiment(identity.experiment_name)
            remote, _ = ensure_run(
                self.transport, experiment_id, identity.key, identity.run_name,
                identity.start_time, tags,
            )  # fmt: skip
            identity.remote_id = remote.run_id
            self.local_ids[remote.run_id] = run_id
            state.remote = remote
            return remote

    # -- the outbox's callbacks --------------------------------------------------------------------
    def send(self, request: Request) -> None:
        """Deliver one planned request (on the sender thread)."""
        op = request.op
        try:
            remote = self.resolve(request.run_id)
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
            self.warn_once(f"rejected:{exc.code}", f"the MLflow server refused a write: {exc}")
            if isinstance(op, Artifact):
                discard_staged(op)
            raise
        except Transient:
            raise
        except Exception as exc:  # a bug here must not lose data: retried, then spilled
            self.warn_once(f"bug:{type(exc).__name__}", f"could not send to MLflow: {exc!r}")
            raise Transient(str(exc)) from exc

    def _log_batch(
        self, remote: RemoteRun, metrics: list[Metric], params: dict, tags: dict
    ) -> None:
        if not (metrics or params or tags):
            return
        try:
            self.transport.log_batch(remote.run_id, metrics, params, tags)
        except Rejected:
            split: list[tuple[list[Metric], dict, dict]] = [
                (metrics, {}, {}), ([], params, {}), ([], {}, tags)
            ]  # fmt: skip
            parts = [part for part in split if any(part)]
            if len(parts) == 1:
                raise
            for part in parts:  # lose only the part the server refuses
                try:
                    self.transport.log_batch(remote.run_id, *part)
                except Rejected as exc:
                    self.warn_once(f"rejected:{exc.code}", f"the MLflow server refused: {exc}")

    def spill_items(self, items: list[Item]) -> None:
        """Write items to the spill store, grouped per run (the outbox's overflow and exit)."""
        groups: dict[str, dict] = {}
        for raw in items:
            item = raw.item if isinstance(raw, Unsure) else raw
            group = groups.setdefault(
                item_run(item),
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
        state = self.state(run_id)
        if state.identity is not None:
            return state.identity
        return Identity(  # a run created elsewhere: `sync` finds it by its server id
            key=f"mlflow-run-{run_id}", target=self.uri, experiment_name="autotrack-spill",
            run_name=run_id, start_time=now_ms(), remote_id=run_id,
        )  # fmt: skip

    def warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            from autotrack.safety import warn_once

            warn_once(f"mlflow:{key}", f"autotrack: {message}")
        except Exception:
            warnings.warn(f"autotrack: {message}", RuntimeWarning, stacklevel=2)
