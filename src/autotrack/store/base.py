"""The Store protocol: everything the tracking API needs from a backend.

A backend knows nothing about frameworks; it keeps experiments, runs, params (write-once),
tags, metric histories and artifact files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.search import Query


class Store(Protocol):
    uri: str

    def get_or_create_experiment(self, name: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    def list_experiments(self) -> list[Experiment]: ...

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None,
        tags: dict[str, str],
        parent_run_id: str | None,
        start_time: int,
    ) -> Run: ...

    def finish_run(self, run_id: str, status: RunStatus, end_time: int) -> None: ...

    def get_run(self, run_id: str) -> Run: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None,
        query: Query,
        order_by: Sequence[str] | None,
        max_results: int,
    ) -> list[Run]: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        keep_existing: bool = False,
    ) -> None:
        """Params are write-once: a different value raises ValueError, or with
        `keep_existing` is dropped (the first value stays); tags overwrite; metrics may be
        buffered but are visible to every later read."""

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None) -> None: ...

    def list_artifacts(self, run_id: str, path: str = "") -> list[FileInfo]: ...

    def artifact_local_path(self, run_id: str, path: str = "") -> str:
        """A local filesystem path for an artifact (downloaded first by remote backends)."""

    def flush(self) -> None: ...

    def close(self) -> None: ...
