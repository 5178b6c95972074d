"""Spilling: records the MLflow server could not take yet, kept in an embedded store.

The spill store is an ordinary `SQLiteStore` folder (default `./autotrack-runs/mlflow-spill`,
or `$AUTOTRACK_SPILL_DIR`). Each run there carries its idempotency key and where it was going
as tags, so `autotrack sync` can push it to the right server, find the run it belongs to
there (or create it once), and skip what the server already has.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autotrack.entities import Metric
from autotrack.store.mlflow_queue import Artifact, Finish
from autotrack.store.mlflow_transport import RUN_KEY_TAG

TARGET_TAG = "autotrack.spill.target"
EXPERIMENT_TAG = "autotrack.spill.experiment"
REMOTE_ID_TAG = "autotrack.spill.mlflow_run_id"
PARENT_KEY_TAG = "autotrack.spill.parent_key"
FINISHED_TAG = "autotrack.spill.finished"
SYNCED_TAG = "autotrack.spill.synced"
CONTROL_TAGS = (
    TARGET_TAG, EXPERIMENT_TAG, REMOTE_ID_TAG, PARENT_KEY_TAG, FINISHED_TAG, SYNCED_TAG,
)  # fmt: skip


def default_spill_dir() -> Path:
    folder = os.environ.get("AUTOTRACK_SPILL_DIR")
    if folder:
        return Path(folder).expanduser().resolve()
    return (Path.cwd() / "autotrack-runs" / "mlflow-spill").resolve()


@dataclass
class Identity:
    """Everything needed to find or create a run on the server, whenever that happens."""

    key: str
    target: str
    experiment_name: str
    run_name: str
    start_time: int
    tags: dict[str, str] = field(default_factory=dict)
    parent_key: str | None = None
    remote_id: str | None = None

    def spill_tags(self) -> dict[str, str]:
        tags = {
            **self.tags,
            RUN_KEY_TAG: self.key,
            TARGET_TAG: self.target,
            EXPERIMENT_TAG: self.experiment_name,
        }
        if self.parent_key:
            tags[PARENT_KEY_TAG] = self.parent_key
        if self.remote_id:
            tags[REMOTE_ID_TAG] = self.remote_id
        return tags


class Spill:
    """Writes spilled records into the spill store, one spill-store run per run key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._store = None
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def _open(self):  # -> SQLiteStore, imported late: most processes never spill
        if self._store is None:
            from autotrack.store.sqlite import SQLiteStore

            self._store = SQLiteStore(self.folder)
        return self._store

    def write(
        self,
        identity: Identity,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        finish: Finish | None = None,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        with self._lock:
            store = self._open()
            run_id = self._run_for(store, identity)
            extra = {**(tags or {}), SYNCED_TAG: ""}  # new data: not fully synced any more
            if identity.remote_id:
                extra[REMOTE_ID_TAG] = identity.remote_id
            if finish is not None:
                extra[FINISHED_TAG] = str(finish.status)
            store.log_batch(run_id, metrics=list(metrics), params=params or None, tags=extra)
            for artifact in artifacts:
                _move_artifact(store, run_id, artifact)
            if finish is not None:
                store.finish_run(run_id, finish.status, finish.end_time)
            store.flush()

    def _run_for(self, store, identity: Identity) -> str:
        run_id = self._ids.get(identity.key)
        if run_id is not None:
            try:
                store.get_run(run_id)
                return run_id
            except KeyError:
                pass  # removed by `autotrack sync` meanwhile
        experiment = store.get_or_create_experiment(identity.experiment_name)
        run = store.create_run(
            experiment.experiment_id,
            run_name=identity.run_name,
            tags=identity.spill_tags(),
            parent_run_id=None,
            start_time=identity.start_time,
        )
        self._ids[identity.key] = run.run_id
        return run.run_id

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()


def _move_artifact(store, run_id: str, artifact: Artifact) -> None:
    """Copy a staged artifact into the spill store; a staged copy already uploaded (and
    removed) by the sender meanwhile is simply gone."""
    try:
        if artifact.staged.exists():
            store.log_artifact(run_id, str(artifact.staged), artifact.artifact_path)
    except OSError:
        if artifact.staged.exists():
            raise
    finally:
        discard_staged(artifact)


def discard_staged(artifact: Artifact) -> None:
    shutil.rmtree(artifact.staged.parent, ignore_errors=True)
