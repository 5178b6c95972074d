"""Any MLflow tracking URI other than an HTTP server (`sqlite:///...`, `postgresql://...`,
`file:...`), through MLflow's own client and stores: there is no network to lose there."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.store.mlflow_transport import (
    PARENT_TAG,
    RUN_KEY_TAG,
    Rejected,
    RemoteRun,
    Transient,
    clip_param,
    download_artifacts,
    status_of,
    upload_with_repository,
)

_PERMANENT_CODES = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "BAD_REQUEST",
    "INVALID_STATE",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
}


class ClientTransport:
    """Any other MLflow tracking URI, through MLflow's own client and stores."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri)

    def _do(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code in _PERMANENT_CODES:
                raise Rejected(str(exc), exc.error_code) from exc
            raise Transient(str(exc)) from exc
        except OSError as exc:
            raise Transient(str(exc)) from exc

    def quick(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # no network here

    def ping(self) -> bool:
        try:
            self._do(self._client.search_experiments, max_results=1)
        except (Transient, Rejected):
            return False
        return True

    def experiment_by_name(self, name: str) -> Experiment | None:
        found = self._do(self._client.get_experiment_by_name, name)
        return _experiment_entity(found) if found is not None else None

    def create_experiment(self, name: str) -> str:
        return str(self._do(self._client.create_experiment, name))

    def list_experiments(self) -> list[Experiment]:
        return [_experiment_entity(e) for e in self._do(self._client.search_experiments)]

    def create_run(
        self, experiment_id: str, run_name: str, start_time: int, tags: dict[str, str]
    ) -> RemoteRun:
        run = self._do(
            self._client.create_run, experiment_id, start_time=start_time, tags=tags,
            run_name=run_name,
        )  # fmt: skip
        return _remote_entity(run)

    def find_run(self, experiment_id: str, key: str) -> RemoteRun | None:
        runs = self._do(
            self._client.search_runs, [experiment_id], f"tags.`{RUN_KEY_TAG}` = '{key}'",
            max_results=1, order_by=["attributes.start_time ASC"],
        )  # fmt: skip
        return _remote_entity(runs[0]) if runs else None

    def remote_run(self, run_id: str) -> RemoteRun | None:
        try:
            return _remote_entity(self._do(self._client.get_run, run_id))
        except Rejected as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def log_batch(
        self, run_id: str, metrics: Sequence[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        from mlflow.entities import Metric as MlflowMetric
        from mlflow.entities import Param, RunTag

        self._do(
            self._client.log_batch,
            run_id,
            metrics=[MlflowMetric(m.key, m.value, int(m.timestamp), int(m.step)) for m in metrics],
            params=[Param(k, clip_param(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        self._do(self._client.set_terminated, run_id, str(status), end_time)

    def get_run(self, run_id: str) -> Run:
        return _run_from_entity(self._do(self._client.get_run, run_id))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        order_by: Sequence[str],
        max_results: int,
    ) -> list[Run]:
        runs = self._do(
            self._client.search_runs, list(experiment_ids), filter_string,
            max_results=max_results, order_by=list(order_by),
        )  # fmt: skip
        return [_run_from_entity(r) for r in runs]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return [
            Metric(m.key, float(m.value), int(m.step), int(m.timestamp))
            for m in self._do(self._client.get_metric_history, run_id, key)
        ]

    def upload(self, run: RemoteRun, local_path: Path, artifact_path: str) -> None:
        upload_with_repository(run.artifact_uri, local_path, artifact_path)

    def list_artifacts(self, run_id: str, path: str) -> list[FileInfo]:
        files = self._do(self._client.list_artifacts, run_id, path or None)
        return [FileInfo(f.path, bool(f.is_dir), f.file_size) for f in files]

    def download(self, run_id: str, path: str, dst: Path) -> str:
        return download_artifacts(self.tracking_uri, run_id, path, dst)


def _experiment_entity(found: Any) -> Experiment:
    return Experiment(str(found.experiment_id), found.name, int(found.creation_time or 0))


def _remote_entity(run: Any) -> RemoteRun:
    return RemoteRun(run.info.run_id, str(run.info.experiment_id), run.info.artifact_uri)


def _run_from_entity(run: Any) -> Run:
    info, data = run.info, run.data
    return Run(
        run_id=info.run_id,
        run_name=info.run_name or data.tags.get("mlflow.runName", ""),
        experiment_id=str(info.experiment_id),
        status=status_of(info.status),
        start_time=int(info.start_time or 0),
        end_time=int(info.end_time) if info.end_time else None,
        parent_run_id=data.tags.get(PARENT_TAG),
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        tags=dict(data.tags),
        artifact_uri=info.artifact_uri,
    )
