"""The `autotrack ui` server: a JSON API under `/api/` and the page in `static/`, on Bottle.

Read-only by construction (only GET routes), bound to 127.0.0.1 by default, and it answers
only requests addressed to the host it serves (so a web page elsewhere cannot reach it through
DNS rebinding). Every value in a response is data: JSON is written with `<`, `>` and `&`
escaped, the page inserts text with `textContent`, and artifact files are served from inside
the run's artifact folder only (`autotrack.artifacts.resolve`), in a sandbox.

API (all GET, JSON unless noted; `GET /api` lists the same):
  /api/experiments                        experiments, with the start time of their newest run
  /api/runs?experiment_id&filter&sort&desc&offset&limit&quick
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

import contextlib
import json
import socketserver
import sys
import threading
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

from autotrack.store import open_store
from autotrack.ui.api import Api, ApiError

STATIC = Path(__file__).parent / "static"
_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ENDPOINTS = [
    ("/api/experiments", "experiments, with `last_run_time` (newest run start, ms) or null"),
    (
        "/api/runs",
        "query: experiment_id (empty: all), filter (search_runs syntax), sort (e.g. "
        "metrics.rmse, params.C, attributes.duration), desc (1/0), offset, limit, quick (1: "
        "if nothing is cached, answer from the newest runs only, with partial=true and "
        "total=null). Returns runs (children folded under their parent), total, matched, "
        "columns (keys with counts), any_running, partial",
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


def to_json(value: Any) -> str:
    """JSON that stays inert even if a browser were tricked into reading it as HTML."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
    app.config["autotrack.api"] = api

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
    store_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000, *, warm: bool = True
) -> WSGIServer:
    """A threaded HTTP server for the UI, bound but not yet serving (port 0: any free port).
    With `warm`, the newest experiment's runs are read in the background meanwhile."""
    app = make_app(store_uri, allowed_host=host)
    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    if warm:
        threading.Thread(target=_warm, args=(app.config["autotrack.api"],), daemon=True).start()
    return server


def _warm(api: Api) -> None:
    with contextlib.suppress(Exception):  # a head start only: requests read the store anyway
        api.warm()


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
