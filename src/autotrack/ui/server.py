"""The `autotrack ui` server: a JSON API under `/api/` and the page in `static/`, on Bottle.

Read-only by construction (only GET routes), bound to 127.0.0.1 by default, and it answers
only requests addressed to the host it serves (so a web page elsewhere cannot reach it through
DNS rebinding). Every value in a response is data: JSON is written with `<`, `>` and `&`
escaped, the page inserts text with `textContent`, and artifact files are served from inside
the run's artifact folder only (`autotrack.artifacts.resolve`), in a sandbox.

API (all GET, JSON unless noted; `GET /api` lists the same):
  /api/experiments                        experiments, with the start time of their newest run
  /api/runs?experiment_id&filter&sort&desc&offset&limit
                                          one page of runs, children folded under parents
  /api/runs/<id>                          one run: params, tags, latest metrics, metric keys
  /api/runs/<id>/artifacts?path&recursive the entries of an artifact folder (or its tree)
  /api/runs/<id>/artifacts/preview?path   an artifact as image / table / json / text / binary
  /api/runs/<id>/artifacts/raw?path       the artifact file itself (sandboxed, not JSON)
  /api/runs/<id>/models                   model folders: descriptor, signature, how to load
  /api/metric-history?run_id&key&max_points
                                          histories (repeat run_id and key), downsampled
  /api/compare?run_id=..&run_id=..        runs side by side; rows flagged where they differ
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

try:
    import bottle
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "autotrack ui needs Bottle: pip install 'autotrack[ui]' (or pip install bottle)"
    ) from exc

from autotrack.search import FilterError, Query, parse_filter
from autotrack.store import Store, open_store
from autotrack.ui import data
from autotrack.ui.artifact_view import find_models, load_snippet, preview

STATIC = Path(__file__).parent / "static"
MAX_RUNS = 100_000
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
ENDPOINTS = [
    ("/api/experiments", "experiments, with `last_run_time` (newest run start, ms) or null"),
    (
        "/api/runs",
        "query: experiment_id (empty: all), filter (search_runs syntax), sort (e.g. "
        "metrics.rmse, params.C, attributes.duration), desc (1/0), offset, limit. Returns "
        "runs (children folded under their parent), total, matched, columns, any_running",
    ),
    ("/api/runs/<run_id>", "a run with its metric keys and point counts, parent and children"),
    ("/api/runs/<run_id>/artifacts", "query: path, recursive (1: the whole tree below path)"),
    ("/api/runs/<run_id>/artifacts/preview", "query: path. kind image|table|json|text|binary"),
    ("/api/runs/<run_id>/artifacts/raw", "query: path. The file, sandboxed"),
    ("/api/runs/<run_id>/models", "model folders with descriptor, signature and load snippet"),
    (
        "/api/metric-history",
        "query: run_id (repeat), key (repeat), max_points (default 1000). "
        "{run_id: {key: {total, downsampled, points: [[step, value, timestamp]]}}}",
    ),
    (
        "/api/compare",
        "query: run_id (repeat, 1..50). runs, a table flagged where values differ, and "
        "metric_counts (points per metric key, per run)",
    ),
]


class ApiError(Exception):
    """An error the client caused: answered as JSON with a status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def to_json(value: Any) -> str:
    """JSON that stays inert even if a browser were tricked into reading it as HTML."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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

    def _run(self, run_id: str) -> Any:
        if not _RUN_ID.match(run_id):
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
        experiment_id = _arg("experiment_id")
        try:
            query = parse_filter(_arg("filter"))
        except FilterError as exc:
            raise ApiError(400, str(exc)) from None
        ids = [experiment_id] if experiment_id else None
        found = self.store.search_runs(ids, query, None, MAX_RUNS)
        try:
            ordered = data.sort_runs(found, _arg("sort"), _arg("desc") in ("1", "true"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        rows = data.fold_children(ordered)
        offset = _int_arg("offset", 0, 0, len(rows))
        limit = _int_arg("limit", 100, 1, 1000)
        return {
            "total": len(rows),
            "matched": len(found),
            "truncated": len(found) >= MAX_RUNS,
            "offset": offset,
            "runs": rows[offset : offset + limit],
            "columns": data.column_keys(found),
            "any_running": any(run.status == "RUNNING" for run in found),
        }

    def run(self, run_id: str) -> dict[str, Any]:
        run = self._run(run_id)
        counts = getattr(self.store, "metric_keys", None)
        keys = counts(run_id) if counts else dict.fromkeys(run.metrics, 1)
        children = self.store.search_runs(
            None, parse_filter(f"attributes.parent_run_id = '{run_id}'"), None, MAX_RUNS
        )
        parent = None
        if run.parent_run_id and _RUN_ID.match(run.parent_run_id):
            try:
                found = self.store.get_run(run.parent_run_id)
                parent = {"run_id": found.run_id, "run_name": found.run_name}
            except KeyError:
                parent = {"run_id": run.parent_run_id, "run_name": None}
        return {
            **data.run_summary(run),
            "metric_keys": [{"key": k, "count": n} for k, n in sorted(keys.items())],
            "parent": parent,
            "children": [data.run_summary(child) for child in children],
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
        response.set_header("Content-Security-Policy", _ARTIFACT_POLICY)
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
            out[run_id] = {
                key: data.metric_series(self.store.get_metric_history(run_id, key), max_points)
                for key in keys
            }
        return out

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


def _json_route(handler: Callable[..., Any]) -> Callable[..., bottle.HTTPResponse]:
    def route(**kwargs: Any) -> bottle.HTTPResponse:
        try:
            result = handler(**kwargs)
            if isinstance(result, bottle.HTTPResponse):
                return result
            status, body = 200, result
        except ApiError as exc:
            status, body = exc.status, {"error": str(exc)}
        response = bottle.HTTPResponse(to_json(body), status)
        response.content_type = "application/json; charset=utf-8"
        response.set_header("Cache-Control", "no-store")
        return response

    return route


def _allowed_hosts(bound: str | None) -> set[str] | None:
    """Host names a request may address; None (any) when bound to every interface."""
    if bound in ("0.0.0.0", "::", ""):
        return None
    names = {"127.0.0.1", "localhost", "[::1]", "::1"}
    if bound:
        names.add(bound.lower())
    return names


def make_app(store_uri: str | None = None, *, allowed_host: str | None = "127.0.0.1") -> Any:
    """The WSGI application over the store at `store_uri` (default: the tracking URI)."""
    if store_uri is None:
        from autotrack.tracking import get_tracking_uri

        store_uri = get_tracking_uri()
    api = Api(open_store(store_uri))
    hosts = _allowed_hosts(allowed_host)
    app = bottle.Bottle()
    app.config["autotrack.store_uri"] = store_uri

    @app.hook("before_request")
    def check_host() -> None:
        host = (bottle.request.get_header("Host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if hosts is not None and name not in hosts:
            raise bottle.HTTPError(403, "this server only answers requests to localhost")

    @app.hook("after_request")
    def security_headers() -> None:
        bottle.response.set_header("X-Content-Type-Options", "nosniff")
        bottle.response.set_header("Referrer-Policy", "no-referrer")
        if "Content-Security-Policy" not in bottle.response.headers:
            bottle.response.set_header("Content-Security-Policy", _PAGE_POLICY)

    routes: list[tuple[str, Callable[..., Any]]] = [
        ("/api", lambda: {"endpoints": [{"path": p, "about": a} for p, a in ENDPOINTS]}),
        ("/api/experiments", api.experiments),
        ("/api/runs", api.runs),
        ("/api/runs/<run_id>", api.run),
        ("/api/runs/<run_id>/artifacts", api.artifacts),
        ("/api/runs/<run_id>/artifacts/preview", api.artifact_preview),
        ("/api/runs/<run_id>/artifacts/raw", api.artifact_raw),
        ("/api/runs/<run_id>/models", api.models),
        ("/api/metric-history", api.metric_history),
        ("/api/compare", api.compare),
    ]
    for path, handler in routes:
        app.route(path, "GET", _json_route(handler))
    app.route("/api/<rest:path>", "GET", _json_route(_unknown))
    app.route("/", "GET", lambda: bottle.static_file("index.html", root=str(STATIC)))
    app.route("/static/<name>", "GET", lambda name: bottle.static_file(name, root=str(STATIC)))
    return app


def _unknown(rest: str) -> None:
    raise ApiError(404, f"no API endpoint /api/{rest}; GET /api lists them")


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_ui_server(
    store_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000
) -> WSGIServer:
    """A threaded HTTP server for the UI, bound but not yet serving (port 0: any free port)."""
    return make_server(
        host,
        port,
        make_app(store_uri, allowed_host=host),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )


def serve(store_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Serve the UI until Ctrl-C."""
    server = make_ui_server(store_uri, host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"autotrack ui: http://{shown}:{server.server_port}/  (store: {store_uri}; Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("autotrack ui: warning: other machines can reach it; no login", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
