"""`autotrack sync` and `autotrack export`: copy runs from an embedded store into MLflow.

Both push runs the same way, and both can be repeated safely. Each run has an idempotency
key (its `autotrack.run_key` tag, else its embedded run id) recorded on the MLflow run, so a
run is found again instead of created twice; metric points the server already has (same key,
step, timestamp and value) are skipped, params already there are not re-sent, tags and
artifacts are overwritten with the same content.

- `sync(spill_uri=None)` pushes what an MLflow-backed process spilled while its server was
  unreachable (each spilled run records its server), then marks it synced.
- `export_runs(source_uri, to_uri, filter_string="")` copies runs of an embedded store
  (with their parents, so nesting survives) into the MLflow tracking URI `to_uri`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from autotrack.entities import Run, RunStatus
from autotrack.search import Query, parse_filter
from autotrack.store import mlflow_models
from autotrack.store.mlflow_mapping import (
    PARENT_TAG,
    autotrack_uri_of,
    mlflow_tags,
    tracking_uri_of,
)
from autotrack.store.mlflow_spill import (
    CONTROL_TAGS,
    EXPERIMENT_TAG,
    FINISHED_TAG,
    PARENT_KEY_TAG,
    REMOTE_ID_TAG,
    SYNCED_TAG,
    TARGET_TAG,
    default_spill_dir,
)
from autotrack.store.mlflow_transport import (
    MAX_METRICS_PER_REQUEST,
    MAX_PARAMS_TAGS_PER_REQUEST,
    RUN_KEY_TAG,
    Rejected,
    RemoteRun,
    Transient,
    Transport,
    clip_param,
    ensure_experiment,
    ensure_run,
    missing_points,
    open_transport,
)
from autotrack.store.sqlite import DATABASE_NAME, SQLiteStore

_ALL = 10**9


@dataclass
class PushReport:
    """What a sync or an export did; `str()` is the summary the CLI prints."""

    runs: int = 0
    created: int = 0
    metrics: int = 0
    metrics_already_there: int = 0
    params: int = 0
    tags: int = 0
    artifact_files: int = 0
    marked_synced: int = 0
    run_ids: dict[str, str] = field(default_factory=dict)  # source run id -> MLflow run id
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        if not self.runs and not self.errors:
            return "nothing to push"
        lines = [
            f"{self.runs} runs pushed ({self.created} created, {self.runs - self.created} already"
            f" there), {self.metrics} metric points sent ({self.metrics_already_there} already"
            f" there), {self.params} params, {self.tags} tags, {self.artifact_files} artifact files"
        ]
        if self.marked_synced:
            lines.append(f"{self.marked_synced} spilled runs are now fully synced")
        lines.extend(f"error: {error}" for error in self.errors)
        return "\n".join(lines)


@dataclass
class _Plan:
    """How one source run maps to MLflow."""

    run: Run
    key: str
    experiment: str
    parent_key: str | None
    remote_hint: str | None
    final_status: RunStatus | None
    authoritative: bool = True  # False: only end a run the server still has RUNNING


# -- public entry points ------------------------------------------------------------------------
def sync(spill_uri: str | None = None) -> PushReport:
    """Push everything spilled into the spill folder `spill_uri` (default: the configured
    one, `$AUTOTRACK_SPILL_DIR` or ./autotrack-runs/mlflow-spill) to its MLflow server."""
    report = PushReport()
    folder = Path(spill_uri).expanduser().resolve() if spill_uri else default_spill_dir()
    if not (folder / DATABASE_NAME).is_file():
        return report
    source = SQLiteStore(folder)
    try:
        runs = [
            r for r in source.search_runs(None, Query(), None, _ALL) if not r.tags.get(SYNCED_TAG)
        ]
        by_target: dict[str, list[Run]] = {}
        for run in runs:
            by_target.setdefault(run.tags.get(TARGET_TAG, ""), []).append(run)
        for target, group in by_target.items():
            if not target:
                report.errors.append(f"{len(group)} spilled runs name no MLflow server; skipped")
                continue
            plans = [_spill_plan(run, source) for run in group]
            done = _push_all(source, open_transport(tracking_uri_of(target)), plans, report)
            for plan in plans:
                if plan.run.run_id in done and plan.run.status != RunStatus.RUNNING:
                    source.log_batch(plan.run.run_id, tags={SYNCED_TAG: "1"})
                    _free_artifacts(source, plan.run.run_id)
                    report.marked_synced += 1
    finally:
        source.close()
    return report


def export_runs(source_uri: str, to_uri: str, filter_string: str = "") -> PushReport:
    """Copy the runs of the embedded store at `source_uri` matching `filter_string` (and their
    parent runs) into MLflow at `to_uri` (`http://host:5000`, `mlflow+http://...`,
    `sqlite:///mlflow.db`...). Running it again creates no duplicates."""
    from autotrack.store import open_store

    source = open_store(source_uri)
    if not isinstance(source, SQLiteStore):
        raise ValueError(f"export copies runs from an embedded store; {source_uri!r} is not one")
    report = PushReport()
    try:
        matched = source.search_runs(None, parse_filter(filter_string), None, _ALL)
        runs = _with_ancestors(source, matched)
        names = {e.experiment_id: e.name for e in source.list_experiments()}
        keys = {run.run_id: run.tags.get(RUN_KEY_TAG) or run.run_id for run in runs}
        plans = [
            _Plan(
                run=run,
                key=keys[run.run_id],
                experiment=names.get(run.experiment_id, "Default"),
                parent_key=keys.get(run.parent_run_id or ""),
                remote_hint=None,
                final_status=None if run.status == RunStatus.RUNNING else run.status,
            )
            for run in runs
        ]
        target = tracking_uri_of(autotrack_uri_of(to_uri))
        _push_all(source, open_transport(target), plans, report)
    finally:
        source.close()
    return report


# -- planning -----------------------------------------------------------------------------------
def _spill_plan(run: Run, source: SQLiteStore) -> _Plan:
    """A spilled run's status is pushed only when its process recorded one, or when the
    process died (read as KILLED) before it could."""
    finished = run.tags.get(FINISHED_TAG)
    status: RunStatus | None = None
    if finished:
        status = RunStatus(finished)
    elif run.status == RunStatus.KILLED:
        status = RunStatus.KILLED
    return _Plan(
        run=run,
        key=run.tags.get(RUN_KEY_TAG, run.run_id),
        experiment=run.tags.get(EXPERIMENT_TAG, "Default"),
        parent_key=run.tags.get(PARENT_KEY_TAG),
        remote_hint=run.tags.get(REMOTE_ID_TAG),
        final_status=status,
        authoritative=bool(finished),
    )


def _with_ancestors(source: SQLiteStore, runs: list[Run]) -> list[Run]:
    found = {run.run_id: run for run in runs}
    todo = [run.parent_run_id for run in runs if run.parent_run_id]
    while todo:
        parent_id = todo.pop()
        if parent_id in found:
            continue
        try:
            parent = source.get_run(parent_id)
        except KeyError:
            continue
        found[parent_id] = parent
        if parent.parent_run_id:
            todo.append(parent.parent_run_id)
    return list(found.values())


def _parents_first(plans: list[_Plan]) -> list[_Plan]:
    by_key = {plan.key: plan for plan in plans}

    def depth(plan: _Plan) -> int:
        seen, level = set(), 0
        while plan.parent_key in by_key and plan.parent_key not in seen:
            seen.add(plan.parent_key)
            plan = by_key[plan.parent_key]
            level += 1
        return level

    return sorted(plans, key=lambda p: (depth(p), p.run.start_time))


# -- pushing ------------------------------------------------------------------------------------
def _push_all(
    source: SQLiteStore, transport: Transport, plans: list[_Plan], report: PushReport
) -> set[str]:
    """Push plans parents first; stop at the first unreachable-server error. Returns the
    source run ids pushed completely."""
    done: set[str] = set()
    remote_by_key: dict[str, str] = {}
    experiments: dict[str, str] = {}
    for plan in _parents_first(plans):
        try:
            if plan.experiment not in experiments:
                experiments[plan.experiment] = ensure_experiment(transport, plan.experiment)
            parent_id = remote_by_key.get(plan.parent_key or "")
            if plan.parent_key and parent_id is None:
                found = transport.find_run(experiments[plan.experiment], plan.parent_key)
                parent_id = found.run_id if found else None
            remote = _push_run(
                source, transport, plan, experiments[plan.experiment], parent_id, report
            )
        except Transient as exc:
            report.errors.append(f"{transport.tracking_uri} unreachable, nothing more sent: {exc}")
            break
        except Rejected as exc:
            report.errors.append(f"run {plan.run.run_id} ({plan.run.run_name}): {exc}")
            continue
        remote_by_key[plan.key] = remote.run_id
        report.run_ids[plan.run.run_id] = remote.run_id
        report.runs += 1
        done.add(plan.run.run_id)
    return done


def _push_run(
    source: SQLiteStore,
    transport: Transport,
    plan: _Plan,
    experiment_id: str,
    parent_id: str | None,
    report: PushReport,
) -> RemoteRun:
    run = plan.run
    tags = mlflow_tags({k: v for k, v in run.tags.items() if k not in CONTROL_TAGS})
    tags[RUN_KEY_TAG] = plan.key
    if parent_id:
        tags[PARENT_TAG] = parent_id
    remote = transport.remote_run(plan.remote_hint) if plan.remote_hint else None
    created = False
    if remote is None:
        remote, created = ensure_run(
            transport, experiment_id, plan.key, run.run_name, run.start_time, tags
        )
    report.created += created
    existing = None if created else transport.get_run(remote.run_id)
    params = {k: v for k, v in run.params.items() if existing is None or k not in existing.params}
    if existing is not None:
        tags = {k: v for k, v in tags.items() if existing.tags.get(k) != v}
    for chunk in _chunks(list(params.items()), MAX_PARAMS_TAGS_PER_REQUEST):
        transport.log_batch(remote.run_id, [], {k: clip_param(v) for k, v in chunk}, {})
    for chunk in _chunks(list(tags.items()), MAX_PARAMS_TAGS_PER_REQUEST):
        transport.log_batch(remote.run_id, [], {}, dict(chunk))
    report.params += len(params)
    report.tags += len(tags)
    for key in sorted(source.metric_keys(run.run_id)):
        points = source.get_metric_history(run.run_id, key)
        new = points if created else missing_points(transport, remote.run_id, points)
        report.metrics_already_there += len(points) - len(new)
        for chunk in _chunks(new, MAX_METRICS_PER_REQUEST):
            transport.log_batch(remote.run_id, chunk, {}, {})
        report.metrics += len(new)
    report.artifact_files += _push_artifacts(source, transport, run.run_id, remote)
    status = plan.final_status
    changes = status is not None and (existing is None or existing.status != status)
    may_end = plan.authoritative or existing is None or existing.status == RunStatus.RUNNING
    if status is not None and changes and may_end:
        transport.update_run(remote.run_id, status, run.end_time)
    return remote


def _push_artifacts(
    source: SQLiteStore, transport: Transport, run_id: str, remote: RemoteRun
) -> int:
    """Upload the run's artifact folder; model directories also get their MLmodel."""
    root = Path(source.artifact_local_path(run_id))
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    if not files:
        return 0
    transport.upload(remote, root, "")
    count = len(files)
    for model_dir in mlflow_models.model_dirs(root):
        extra = mlflow_models.mlflow_files(model_dir)
        if not extra:
            continue
        relative = model_dir.relative_to(root).as_posix()
        with tempfile.TemporaryDirectory(prefix="autotrack-mlmodel-") as tmp:
            for name, text in extra.items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            transport.upload(remote, Path(tmp), "" if relative == "." else relative)
        count += len(extra)
    return count


def _free_artifacts(source: SQLiteStore, run_id: str) -> None:
    shutil.rmtree(source.artifact_local_path(run_id), ignore_errors=True)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["PushReport", "export_runs", "sync"]
