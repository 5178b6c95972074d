"""Talking to MLflow: one small interface (`Transport`), two implementations, and the
idempotent helpers built on it.

`mlflow_rest.RestTransport` speaks MLflow's documented REST API with our own timeouts and no
hidden retries; `mlflow_client.ClientTransport` wraps `MlflowClient` for every other MLflow
URI. Both speak autotrack's entities and raise `Transient` (try again later) or `Rejected`
(the server refused this request; retrying cannot help).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus

RUN_KEY_TAG = "autotrack.run_key"
PARENT_TAG = "mlflow.parentRunId"
MAX_METRICS_PER_REQUEST = 1000
MAX_PARAMS_TAGS_PER_REQUEST = 100
MAX_PARAM_LENGTH = 6000  # MLflow's limit; autotrack allows 8000


class Transient(Exception):
    """The server could not be reached or was not ready; the same request may succeed later."""


class Rejected(Exception):
    """The server answered and refused the request (bad value, unknown run...)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RemoteRun:
    """What the sender needs to know about a run that exists on the server."""

    run_id: str
    experiment_id: str
    artifact_uri: str


class Transport(Protocol):
    tracking_uri: str

    def quick(self) -> AbstractContextManager[None]:
        """Short timeouts for calls on the user's thread (creating a run must not stall)."""
        ...

    def ping(self) -> bool: ...
    def experiment_by_name(self, name: str) -> Experiment | None: ...
    def create_experiment(self, name: str) -> str: ...
    def list_experiments(self) -> list[Experiment]: ...
    def create_run(
        self, experiment_id: str, run_name: str, start_time: int, tags: dict[str, str]
    ) -> RemoteRun: ...
    def find_run(self, experiment_id: str, key: str) -> RemoteRun | None: ...
    def remote_run(self, run_id: str) -> RemoteRun | None: ...
    def log_batch(
        self, run_id: str, metrics: Sequence[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None: ...
    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None: ...
    def get_run(self, run_id: str) -> Run: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        order_by: Sequence[str],
        max_results: int,
    ) -> list[Run]: ...
    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def upload(self, run: RemoteRun, local_path: Path, artifact_path: str) -> None: ...
    def list_artifacts(self, run_id: str, path: str) -> list[FileInfo]: ...
    def download(self, run_id: str, path: str, dst: Path) -> str: ...


def open_transport(tracking_uri: str, timeout: float | None = None) -> Transport:
    """REST for http(s) servers; MlflowClient for everything else."""
    if tracking_uri.startswith(("http://", "https://")):
        from autotrack.store.mlflow_rest import RestTransport

        return RestTransport(tracking_uri, timeout)
    from autotrack.store.mlflow_client import ClientTransport

    return ClientTransport(tracking_uri)


# -- helpers shared by both ---------------------------------------------------------------------
def ensure_experiment(transport: Transport, name: str) -> str:
    """The id of experiment `name`, created if missing (a concurrent create is fine)."""
    found = transport.experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return transport.create_experiment(name)
    except Rejected:
        found = transport.experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def ensure_run(
    transport: Transport,
    experiment_id: str,
    key: str,
    run_name: str,
    start_time: int,
    tags: dict[str, str],
) -> tuple[RemoteRun, bool]:
    """The run tagged with idempotency key `key`, created only if no such run exists.
    Returns (run, created)."""
    found = transport.find_run(experiment_id, key)
    if found is not None:
        return found, False
    return transport.create_run(
        experiment_id, run_name, start_time, {**tags, RUN_KEY_TAG: key}
    ), True


def missing_points(transport: Transport, run_id: str, points: Sequence[Metric]) -> list[Metric]:
    """`points` minus those the server already has (same key, step, timestamp and value): what
    makes re-sending after an uncertain failure, `sync` and `export` free of duplicates."""
    seen: dict[str, set[tuple[int, int, Any]]] = {}
    out = []
    for point in points:
        if point.key not in seen:
            seen[point.key] = {_point_id(m) for m in transport.metric_history(run_id, point.key)}
        if _point_id(point) not in seen[point.key]:
            seen[point.key].add(_point_id(point))
            out.append(point)
    return out


def _point_id(metric: Metric) -> tuple[int, int, Any]:
    value = "nan" if math.isnan(metric.value) else metric.value
    return (int(metric.step), int(metric.timestamp), value)


def clip_param(value: str) -> str:
    if len(value) <= MAX_PARAM_LENGTH:
        return value
    return value[: MAX_PARAM_LENGTH - 20] + "...[truncated]"


def status_of(value: str | None) -> RunStatus:
    try:
        return RunStatus(str(value))
    except ValueError:  # SCHEDULED and future states read as RUNNING
        return RunStatus.RUNNING


def upload_with_repository(artifact_uri: str, local_path: Path, artifact_path: str) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(artifact_uri)
    try:
        if local_path.is_dir():
            repository.log_artifacts(str(local_path), artifact_path or None)
        else:
            repository.log_artifact(str(local_path), artifact_path or None)
    except OSError as exc:
        raise Transient(f"could not write artifacts to {artifact_uri}: {exc}") from exc


def download_artifacts(tracking_uri: str, run_id: str, path: str, dst: Path) -> str:
    import mlflow.artifacts

    dst.mkdir(parents=True, exist_ok=True)
    try:
        return str(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path or None, dst_path=str(dst),
                tracking_uri=tracking_uri,
            )
        )  # fmt: skip
    except Exception as exc:
        raise Transient(f"could not download artifacts of run {run_id}: {exc}") from exc


def now_ms() -> int:
    return int(time.time() * 1000)
