"""The tracking API: runs, params, metrics, tags and artifacts, as MLflow users know it.

Everything funnels into one `RunHandle` (a run id plus the store), so the module-level
functions, the engine and the integrations share one implementation. The active-run stack
lives in a ContextVar: threads and asyncio tasks each have their own.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from autotrack import artifacts, background, context
from autotrack.entities import FileInfo, Metric, Run, RunStatus
from autotrack.search import parse_filter
from autotrack.store import Store, open_store

DEFAULT_STORE_FOLDER = "autotrack-runs"
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 8000
_BAD_KEY = re.compile(r"[\x00-\x1f\x7f]|\.\.|^/|^\s|\s$")

_lock = threading.RLock()
_tracking_uri: str | None = None
_stores: dict[str, Store] = {}
_experiment_name: str | None = None
_experiment_ids: dict[tuple[str, str], str] = {}
_valid_keys: set[str] = set()
_next_step: dict[tuple[str, str], int] = {}
_open_runs: dict[str, RunHandle] = {}
_active: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "autotrack_active_runs", default=()
)


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- where runs go ---------------------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Select the store: a folder (embedded SQLite store) or `mlflow+http://...`."""
    global _tracking_uri
    with _lock:
        _tracking_uri = os.fspath(uri)


def get_tracking_uri() -> str:
    uri = _tracking_uri or os.environ.get("AUTOTRACK_TRACKING_URI") or DEFAULT_STORE_FOLDER
    if uri.startswith("mlflow"):
        return uri
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    return str(Path(path).expanduser().resolve())


def get_store() -> Store:
    uri = get_tracking_uri()
    store = _stores.get(uri)
    if store is None:
        with _lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = open_store(uri)
    return store


def set_experiment(name: str) -> str:
    """Make `name` the experiment new runs go to (created if missing); returns its id."""
    global _experiment_name
    if not name or not str(name).strip():
        raise ValueError("experiment name must be a non-empty string")
    _experiment_name = str(name)
    return _experiment_id()


def _experiment_id(store: Store | None = None) -> str:
    store = store or get_store()
    name = _experiment_name or os.environ.get("AUTOTRACK_EXPERIMENT_NAME") or "Default"
    key = (store.uri, name)
    if key not in _experiment_ids:
        _experiment_ids[key] = store.get_or_create_experiment(name).experiment_id
    return _experiment_ids[key]


# -- validation ---------------------------------------------------------------------------------
def validate_key(key: str, what: str = "key") -> str:
    """Reject empty, over-long or path-like keys with a message naming the key."""
    if key in _valid_keys:
        return key
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{what} must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"{what} {key[:40]!r}... is {len(key)} characters; limit {MAX_KEY_LENGTH}")
    if _BAD_KEY.search(key):
        raise ValueError(
            f"{what} {key!r} is not allowed: no control characters, no '..', "
            "no leading '/', no leading or trailing spaces"
        )
    _valid_keys.add(key)
    return key


def metric_value(key: str, value: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise ValueError(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metric {key!r} must be a single number, got {value!r}") from exc


def param_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - 20] + "...[truncated]"
    return text


# -- one run --------------------------------------------------------------------------------------
class RunHandle:
    """Write access to one run, wherever it sits (active, a child, a finished managed run)."""

    def __init__(self, run_id: str, store: Store | None = None) -> None:
        self.run_id = run_id
        self.store = store or get_store()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.run_id}>"

    def get(self) -> Run:
        background.drain()
        return self.store.get_run(self.run_id)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any], keep_existing: bool = False) -> None:
        """Params are write-once. `keep_existing=True` keeps values already logged instead of
        raising: for autologged calls adding to a run that an earlier call logged into."""
        clean = {validate_key(str(k), "param key"): param_value(v) for k, v in params.items()}
        if clean:
            self.store.log_batch(self.run_id, params=clean, keep_existing=keep_existing)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        clean = {validate_key(str(k), "tag key"): param_value(v) for k, v in tags.items()}
        if clean:
            self.store.log_batch(self.run_id, tags=clean)

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """A few microseconds: validate, then buffer for the background writer."""
        if key not in _valid_keys:
            validate_key(key, "metric key")
        number = metric_value(key, value)
        if step is None:
            step = self._auto_step(key)
        add = getattr(self.store, "add_metric_row", None)
        row = (self.run_id, key, number, int(step), timestamp or int(time.time() * 1000))
        if add is not None:
            add(row)
        else:
            self.store.log_batch(self.run_id, metrics=[Metric(*row[1:])])

    def log_metrics(
        self, metrics: dict[str, Any], step: int | None = None, timestamp: int | None = None
    ) -> None:
        stamp = timestamp or _now_ms()
        points = []
        for key, value in metrics.items():
            validate_key(key, "metric key")
            number = metric_value(key, value)
            points.append(
                Metric(key, number, self._auto_step(key) if step is None else step, stamp)
            )
        if points:
            self.store.log_batch(self.run_id, metrics=points)

    def _auto_step(self, key: str) -> int:
        """Without an explicit step, points of one key count up 0, 1, 2, ... in this process."""
        slot = (self.run_id, key)
        step = _next_step.get(slot, 0)
        _next_step[slot] = step + 1
        return step

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.store.log_artifact(
            self.run_id, os.fspath(local_path), artifacts.clean_relative(artifact_path or "")
        )

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        folder = Path(local_dir)
        if not folder.is_dir():
            raise NotADirectoryError(
                f"log_artifacts needs a folder; {os.fspath(local_dir)!r} is not one"
            )
        self.store.log_artifact(
            self.run_id, str(folder), artifacts.clean_relative(artifact_path or "")
        )

    def _log_file(self, artifact_file: str, write: Any) -> None:
        relative = artifacts.clean_relative(artifact_file)
        if not relative:
            raise ValueError("artifact_file must name a file, e.g. 'results/table.json'")
        folder, _, name = relative.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="autotrack-") as tmp:
            path = Path(tmp) / name
            write(path)
            self.store.log_artifact(self.run_id, str(path), folder)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._log_file(artifact_file, lambda path: path.write_text(text, encoding="utf-8"))

    def log_dict(self, dictionary: Any, artifact_file: str) -> None:
        def write(path: Path) -> None:
            if path.suffix in (".yaml", ".yml"):
                import yaml  # type: ignore[import-untyped]

                path.write_text(yaml.safe_dump(dictionary), encoding="utf-8")
            else:
                path.write_text(json.dumps(dictionary, indent=2, default=str), encoding="utf-8")

        self._log_file(artifact_file, write)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib Figure through its own canvas (pyplot state is never touched)."""
        self._log_file(artifact_file, lambda path: figure.savefig(path, bbox_inches="tight"))

    def defer(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """Run `fn` off the caller's thread, before this run is marked ended."""
        background.submit(fn, *args, **kwargs)

    def end(self, status: str | RunStatus = "FINISHED", wait: bool = True) -> None:
        """End the run; with wait=False, deferred work finishes first, in the background."""
        status = RunStatus(str(status).upper())
        _open_runs.pop(self.run_id, None)
        if wait:
            background.drain()
            self._finish(status)
        else:
            background.submit(self._finish, status)

    def _finish(self, status: RunStatus) -> None:
        self.store.finish_run(self.run_id, status, _now_ms())
        for slot in [s for s in _next_step if s[0] == self.run_id]:
            _next_step.pop(slot, None)


class ActiveRun(RunHandle):
    """A run on the active stack; a context manager that ends it on exit."""

    def __init__(self, run: Run, store: Store) -> None:
        super().__init__(run.run_id, store)
        self.run_name = run.run_name
        self.experiment_id = run.experiment_id
        self.parent_run_id = run.parent_run_id
        self._token: contextvars.Token | None = None

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.end(status)

    def end(self, status: str | RunStatus = "FINISHED", wait: bool = True) -> None:
        """End the run and take it off the active stack, wherever it sits there."""
        stack = _active.get()
        if self in stack:
            _active.set(tuple(r for r in stack if r is not self))
        super().end(status, wait)


# -- the active-run stack ----------------------------------------------------------------------
def start_run(
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> ActiveRun:
    """Start a run and make it active. Use as a context manager to end it automatically."""
    stack = _active.get()
    if stack and not nested and parent_run_id is None:
        raise RuntimeError(
            f"run {stack[-1].run_id} is already active; end it first, or pass nested=True"
        )
    if nested and parent_run_id is None and stack:
        parent_run_id = stack[-1].run_id
    run = _create(run_name, tags, parent_run_id)
    active = ActiveRun(run, get_store())
    _active.set((*stack, active))
    _open_runs[active.run_id] = active
    return active


def create_run(
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> RunHandle:
    """A run that is not made active (e.g. a search's child runs); end it with `.end()`."""
    run = _create(run_name, tags, parent_run_id)
    handle = RunHandle(run.run_id)
    _open_runs[handle.run_id] = handle
    return handle


def _create(run_name: str | None, tags: dict[str, Any] | None, parent_run_id: str | None) -> Run:
    store = get_store()
    all_tags = context.run_tags()
    for key, value in (tags or {}).items():
        all_tags[validate_key(str(key), "tag key")] = param_value(value)
    if run_name is not None:
        run_name = str(run_name)
    _install_exit_handlers()
    return store.create_run(
        _experiment_id(store),
        run_name=run_name,
        tags=all_tags,
        parent_run_id=parent_run_id,
        start_time=_now_ms(),
    )


def active_run() -> ActiveRun | None:
    stack = _active.get()
    return stack[-1] if stack else None


def end_run(status: str | RunStatus = "FINISHED", wait: bool = True) -> None:
    """End the innermost active run (no-op without one)."""
    stack = _active.get()
    if stack:
        stack[-1].end(status, wait)


def _current() -> ActiveRun:
    return active_run() or start_run()


# -- fluent logging into the active run ------------------------------------------------------
def log_param(key: str, value: Any) -> None:
    _current().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    _current().log_params(params)


def log_metric(key: str, value: Any, step: int | None = None, timestamp: int | None = None) -> None:
    _current().log_metric(key, value, step, timestamp)


def log_metrics(metrics: dict[str, Any], step: int | None = None) -> None:
    _current().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    _current().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    _current().log_artifacts(local_dir, artifact_path)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    _current().log_dict(dictionary, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    _current().log_text(text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    _current().log_figure(figure, artifact_file)


# -- reads ---------------------------------------------------------------------------------------
def get_run(run_id: str) -> Run:
    background.drain()
    return get_store().get_run(run_id)


def search_runs(
    experiment_names: Sequence[str] | None = None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> list[Run]:
    """Runs matching `filter_string` (e.g. `metrics.rmse < 1 and params.C = '1'`), newest first
    unless `order_by` says otherwise. `experiment_names=None` searches every experiment."""
    query = parse_filter(filter_string)
    store = get_store()
    background.drain()
    experiment_ids = None
    if experiment_names is not None:
        if isinstance(experiment_names, str):
            experiment_names = [experiment_names]
        found = [store.get_experiment_by_name(name) for name in experiment_names]
        experiment_ids = [e.experiment_id for e in found if e is not None]
    return store.search_runs(experiment_ids, query, order_by, max_results)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    background.drain()
    return get_store().get_metric_history(run_id, key)


def list_artifacts(run_id: str, path: str = "") -> list[FileInfo]:
    background.drain()
    return get_store().list_artifacts(run_id, path)


def artifact_path(run_id: str, path: str = "") -> str:
    """Local path of an artifact (or of the run's artifact root)."""
    background.drain()
    return get_store().artifact_local_path(run_id, path)


def artifact_uri(run_id: str) -> str:
    return artifact_path(run_id)


def flush() -> None:
    """Write everything buffered: deferred work first, then metric points."""
    background.drain()
    for store in list(_stores.values()):
        store.flush()


def iter_open_runs() -> Iterator[RunHandle]:
    return iter(list(_open_runs.values()))


# -- interpreter exit ------------------------------------------------------------------------------
_exit_handlers_installed = False


def _install_exit_handlers() -> None:
    """End open runs at exit (FAILED if an uncaught exception is ending the process)."""
    global _exit_handlers_installed
    if _exit_handlers_installed:
        return
    _exit_handlers_installed = True
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        _close_all(status)
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_close_all, RunStatus.FINISHED)


def _close_all(status: RunStatus) -> None:
    try:
        background.drain(60.0)
        for handle in list(_open_runs.values()):
            handle.end(status)
        for store in list(_stores.values()):
            store.close()
    except Exception as exc:  # never turn a clean exit into a traceback
        print(f"autotrack: could not close runs at exit: {exc!r}", file=sys.stderr)


def _reset_for_tests() -> None:
    """Forget process state (stores, experiment, active runs); used by the test suite."""
    global _tracking_uri, _experiment_name
    flush()
    for store in list(_stores.values()):
        store.close()
    _stores.clear()
    _experiment_ids.clear()
    _open_runs.clear()
    _next_step.clear()
    _active.set(())
    _tracking_uri = None
    _experiment_name = None
