"""The API's handlers: each reads the store and returns plain data for `server.py` to send.

Request arguments are read from Bottle's request; errors the client caused are `ApiError`s
(a status and a message), never tracebacks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import bottle

from autotrack.entities import Run, RunStatus
from autotrack.search import FilterError, Query, parse_filter
from autotrack.store import Store
from autotrack.ui import data
from autotrack.ui.artifact_view import find_models, load_snippet, preview
from autotrack.ui.runs_cache import StoreCache, watch_for

MAX_RUNS = 100_000
MAX_CHILDREN = 1000
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


class ApiError(Exception):
    """An error the client caused: answered as JSON with a status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = bottle.request.query.getunicode(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    return min(max(value, low), high)


def _arg(name: str) -> str:
    return bottle.request.query.getunicode(name) or ""


def _args(name: str) -> list[str]:
    return [v.encode("latin-1").decode("utf-8") for v in bottle.request.query.getall(name)]


class Api:
    """The handlers: each reads the store and returns plain data."""

    def __init__(self, store: Store) -> None:
        self.store = store
        watch = watch_for(store)
        self.runs_cache = StoreCache(watch, size=4)
        self.history_cache = StoreCache(watch, size=256)

    def _run(self, run_id: str) -> Any:
        if not RUN_ID.match(run_id):
            raise ApiError(400, f"{run_id!r} is not a run id")
        try:
            return self.store.get_run(run_id)
        except KeyError:
            raise ApiError(404, f"no run with id {run_id!r}") from None

    def experiments(self) -> list[dict[str, Any]]:
        out = []
        for experiment in self.store.list_experiments():
            newest = self.store.search_runs([experiment.experiment_id], Query(), None, 1)
            out.append(
                {
                    "experiment_id": experiment.experiment_id,
                    "name": experiment.name,
                    "creation_time": experiment.creation_time,
                    "last_run_time": newest[0].start_time if newest else None,
                }
            )
        return out

    def runs(self) -> dict[str, Any]:
        return self.runs_page(
            _arg("experiment_id"),
            _arg("filter"),
            _arg("sort"),
            _arg("desc") in ("1", "true"),
            _int_arg("offset", 0, 0, MAX_RUNS),
            _int_arg("limit", 100, 1, 1000),
            quick=_arg("quick") in ("1", "true"),
        )

    def runs_page(
        self,
        experiment_id: str,
        filter_string: str,
        sort: str,
        desc: bool,
        offset: int,
        limit: int,
        quick: bool = False,
    ) -> dict[str, Any]:
        """One page of rows. With `quick` and the store's own order (newest first), when
        nothing is cached yet, only the newest runs are read: a first paint in milliseconds,
        marked `partial` (no total yet; the page asks again without `quick` at once)."""
        try:
            query = parse_filter(filter_string)
        except FilterError as exc:
            raise ApiError(400, str(exc)) from None
        ids = [experiment_id] if experiment_id else None
        key = (experiment_id, query)
        partial = quick and not sort and self.runs_cache.peek(key) is None
        if partial:
            found = self.store.search_runs(ids, query, None, offset + limit)
            columns = data.column_keys(found)
        else:

            def search() -> tuple[list[Run], Any]:
                runs = self.store.search_runs(ids, query, None, MAX_RUNS)
                return runs, data.column_keys(runs)

            # A RUNNING run turns KILLED on read when its process is gone, with no write to
            # notice: results holding one are read afresh every time.
            found, columns = self.runs_cache.get(key, search, _none_running)
        try:
            ordered = data.sort_runs(found, sort, desc)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        total, rows = data.fold_children(ordered, offset, limit)
        return {
            "partial": partial,
            "total": None if partial else total,
            "matched": None if partial else len(found),
            "truncated": len(found) >= MAX_RUNS,
            "offset": offset,
            "runs": rows,
            "columns": columns,
            "any_running": any(run.status == "RUNNING" for run in found),
        }

    def warm(self) -> None:
        """Read the newest experiment's runs once, so the first page view finds them ready."""
        experiments = [e for e in self.experiments() if e["last_run_time"] is not None]
        if experiments:
            newest = max(experiments, key=lambda e: e["last_run_time"])
            self.runs_page(newest["experiment_id"], "", "", False, 0, 1)

    def run(self, run_id: str) -> dict[str, Any]:
        run = self._run(run_id)
        counts = getattr(self.store, "metric_keys", None)
        keys = counts(run_id) if counts else dict.fromkeys(run.metrics, 1)
        children = self.store.search_runs(
            None, parse_filter(f"attributes.parent_run_id = '{run_id}'"), None, MAX_RUNS
        )
        parent: dict[str, str | None] | None = None
        if run.parent_run_id and RUN_ID.match(run.parent_run_id):
            try:
                found = self.store.get_run(run.parent_run_id)
                parent = {"run_id": found.run_id, "run_name": found.run_name}
            except KeyError:
                parent = {"run_id": run.parent_run_id, "run_name": None}
        return {
            **data.run_summary(run),
            "metric_keys": [{"key": k, "count": n} for k, n in sorted(keys.items())],
            "parent": parent,
            "children": [data.run_summary(child) for child in children[:MAX_CHILDREN]],
            "children_total": len(children),
        }

    def _artifact_file(self, run_id: str) -> tuple[Path, str]:
        self._run(run_id)
        relative = _arg("path")
        try:
            return Path(self.store.artifact_local_path(run_id, relative)), relative
        except ValueError as exc:
            raise ApiError(403, str(exc)) from None

    def artifacts(self, run_id: str) -> dict[str, Any]:
        folder, relative = self._artifact_file(run_id)
        if folder.exists() and not folder.is_dir():
            raise ApiError(400, f"{relative!r} is a file, not a folder")
        entries = self.store.list_artifacts(run_id, relative)
        if _arg("recursive") in ("1", "true"):
            entries = self._walk(run_id, entries)
        return {
            "path": relative,
            "entries": [_entry(e.path, e.is_dir, e.file_size) for e in entries],
        }

    def _walk(self, run_id: str, entries: list[Any], limit: int = 2000) -> list[Any]:
        """The given entries and everything below them, breadth first, at most `limit`."""
        out: list[Any] = []
        pending = list(entries)
        while pending and len(out) < limit:
            entry = pending.pop(0)
            out.append(entry)
            if entry.is_dir:
                pending.extend(self.store.list_artifacts(run_id, entry.path))
        return out

    def artifact_preview(self, run_id: str) -> dict[str, Any]:
        file, relative = self._artifact_file(run_id)
        if not file.is_file():
            raise ApiError(404, f"no artifact file {relative!r} in run {run_id}")
        return preview(file, relative)

    def artifact_raw(self, run_id: str) -> bottle.HTTPResponse:
        file, relative = self._artifact_file(run_id)
        if not file.is_file():
            raise ApiError(404, f"no artifact file {relative!r} in run {run_id}")
        response = bottle.static_file(file.name, root=str(file.parent))
        response.set_header("Content-Security-Policy", ARTIFACT_POLICY)
        return response

    def models(self, run_id: str) -> list[dict[str, Any]]:
        root, _ = self._artifact_file(run_id)
        found = find_models(root) if root.is_dir() else []
        return [{**model, "load": load_snippet(run_id, model["path"])} for model in found]

    def metric_history(self) -> dict[str, Any]:
        run_ids, keys = _args("run_id"), _args("key")
        if not run_ids or not keys:
            raise ApiError(400, "give at least one run_id and one key")
        if len(run_ids) * len(keys) > 400:
            raise ApiError(400, "at most 400 histories per request")
        max_points = _int_arg("max_points", 1000, 4, 20_000)
        out: dict[str, Any] = {}
        for run_id in run_ids:
            self._run(run_id)
            out[run_id] = {key: self._series(run_id, key, max_points) for key in keys}
        return out

    def _series(self, run_id: str, key: str, max_points: int) -> dict[str, Any]:
        return self.history_cache.get(
            (run_id, key, max_points),
            lambda: data.metric_series(self.store.get_metric_history(run_id, key), max_points),
            lambda series: True,
        )

    def compare(self) -> dict[str, Any]:
        run_ids = list(dict.fromkeys(_args("run_id")))
        if not 1 <= len(run_ids) <= 50:
            raise ApiError(400, "compare takes 1 to 50 run_id values")
        runs = [self._run(run_id) for run_id in run_ids]
        counts = getattr(self.store, "metric_keys", None)
        return {
            "runs": [data.run_summary(r) for r in runs],
            "table": data.compare_table(runs),
            "metric_counts": {
                r.run_id: counts(r.run_id) if counts else dict.fromkeys(r.metrics, 1) for r in runs
            },
        }


def _entry(path: str, is_dir: bool, size: int | None) -> dict[str, Any]:
    return {"path": path, "name": path.rsplit("/", 1)[-1], "is_dir": is_dir, "size": size}


def _none_running(found: tuple[list[Run], Any]) -> bool:
    return not any(run.status == RunStatus.RUNNING for run in found[0])
