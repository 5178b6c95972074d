"""MLflow's REST API (`/api/2.0/mlflow/...`) over one `requests` session: our own timeouts
and no hidden retries, so a failed request is never still running in the background (the
outbox decides when to try again). Proxied artifact stores (`mlflow-artifacts:`) get plain
PUTs; any other artifact store goes through MLflow's artifact repository."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
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


class RestTransport:
    """MLflow's REST API (`/api/2.0/mlflow/...`), one attempt per call, bounded by `timeout`."""

    def __init__(self, tracking_uri: str, timeout: float | None = None) -> None:
        import requests

        self.tracking_uri = tracking_uri.rstrip("/")
        read = timeout or float(os.environ.get("AUTOTRACK_MLFLOW_TIMEOUT", "30"))
        self.timeout = (min(5.0, read), read)
        self._requests = requests
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "autotrack"
        _apply_credentials(self._session, self.tracking_uri)
        self._local = threading.local()

    # -- plumbing
    @contextlib.contextmanager
    def quick(self) -> Iterator[None]:
        """Short timeouts for calls made on the user's thread (this thread only)."""
        read = float(os.environ.get("AUTOTRACK_MLFLOW_QUICK_TIMEOUT", "5"))
        self._local.timeout = (min(2.0, read), read)
        try:
            yield
        finally:
            self._local.timeout = None

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.tracking_uri}/api/2.0/mlflow/{endpoint}"
        timeout = getattr(self._local, "timeout", None) or self.timeout
        try:
            if method == "GET":
                response = self._session.get(url, params=body, timeout=timeout)
            else:
                response = self._session.post(url, json=body, timeout=timeout)
        except self._requests.RequestException as exc:
            raise Transient(f"{method} {url}: {exc}") from exc
        return _parse(response, url)

    def ping(self) -> bool:
        try:
            answer = self._session.get(f"{self.tracking_uri}/health", timeout=(2.0, 5.0))
        except self._requests.RequestException:
            return False
        return answer.status_code == 200

    # -- experiments
    def experiment_by_name(self, name: str) -> Experiment | None:
        try:
            body = self._call("GET", "experiments/get-by-name", {"experiment_name": name})
        except Rejected as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return _experiment(body["experiment"])

    def create_experiment(self, name: str) -> str:
        return str(self._call("POST", "experiments/create", {"name": name})["experiment_id"])

    def list_experiments(self) -> list[Experiment]:
        out: list[Experiment] = []
        token = None
        while True:
            body: dict[str, Any] = {"max_results": 1000}
            if token:
                body["page_token"] = token
            answer = self._call("POST", "experiments/search", body)
            out.extend(_experiment(e) for e in answer.get("experiments", []))
            token = answer.get("next_page_token")
            if not token:
                return out

    # -- runs
    def create_run(
        self, experiment_id: str, run_name: str, start_time: int, tags: dict[str, str]
    ) -> RemoteRun:
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": start_time,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        return _remote(self._call("POST", "runs/create", body)["run"])

    def find_run(self, experiment_id: str, key: str) -> RemoteRun | None:
        body = {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`{RUN_KEY_TAG}` = '{key}'",
            "max_results": 1,
            "order_by": ["attributes.start_time ASC"],
        }
        runs = self._call("POST", "runs/search", body).get("runs", [])
        return _remote(runs[0]) if runs else None

    def remote_run(self, run_id: str) -> RemoteRun | None:
        try:
            return _remote(self._call("GET", "runs/get", {"run_id": run_id})["run"])
        except Rejected as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def log_batch(
        self, run_id: str, metrics: Sequence[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        body = {
            "run_id": run_id,
            "metrics": [
                {
                    "key": m.key,
                    "value": _json_float(m.value),
                    "timestamp": int(m.timestamp),
                    "step": int(m.step),
                }
                for m in metrics
            ],
            "params": [{"key": k, "value": clip_param(v)} for k, v in params.items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        self._call("POST", "runs/log-batch", body)

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        body: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id, "status": str(status)}
        if end_time is not None:
            body["end_time"] = int(end_time)
        self._call("POST", "runs/update", body)

    def get_run(self, run_id: str) -> Run:
        return _run_from_json(self._call("GET", "runs/get", {"run_id": run_id})["run"])

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        order_by: Sequence[str],
        max_results: int,
    ) -> list[Run]:
        out: list[Run] = []
        token = None
        while len(out) < max_results:
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "max_results": min(1000, max_results - len(out)),
                "order_by": list(order_by),
            }
            if token:
                body["page_token"] = token
            answer = self._call("POST", "runs/search", body)
            out.extend(_run_from_json(r) for r in answer.get("runs", []))
            token = answer.get("next_page_token")
            if not token:
                break
        return out

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        out: list[Metric] = []
        token = None
        while True:
            body = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                body["page_token"] = token
            answer = self._call("GET", "metrics/get-history", body)
            out.extend(_metric(m) for m in answer.get("metrics", []))
            token = answer.get("next_page_token")
            if not token:
                return out

    # -- artifacts
    def upload(self, run: RemoteRun, local_path: Path, artifact_path: str) -> None:
        """Files of a folder (or one file) under `artifact_path`; proxied artifact stores get
        plain PUTs with our timeout, any other store goes through MLflow's repository."""
        base = _proxied_base(run.artifact_uri, self.tracking_uri)
        if base is None:
            upload_with_repository(run.artifact_uri, local_path, artifact_path)
            return
        for source, relative in _files(local_path, artifact_path):
            url = f"{base}/{urllib.parse.quote(relative)}"
            try:
                with source.open("rb") as handle:
                    response = self._session.put(url, data=handle, timeout=self.timeout)
            except (self._requests.RequestException, OSError) as exc:
                raise Transient(f"PUT {url}: {exc}") from exc
            _parse(response, url)

    def list_artifacts(self, run_id: str, path: str) -> list[FileInfo]:
        body = {"run_id": run_id, "path": path} if path else {"run_id": run_id}
        files = self._call("GET", "artifacts/list", body).get("files", [])
        return [FileInfo(f["path"], bool(f.get("is_dir")), f.get("file_size")) for f in files]

    def download(self, run_id: str, path: str, dst: Path) -> str:
        return download_artifacts(self.tracking_uri, run_id, path, dst)


def _parse(response: Any, url: str) -> Any:
    if response.status_code == 200:
        try:
            return response.json() if response.content else {}
        except ValueError:
            return {}
    try:
        error = response.json()
    except ValueError:
        error = {}
    code = str(error.get("error_code", ""))
    message = f"{url}: HTTP {response.status_code} {error.get('message') or response.text[:200]}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise Transient(message)
    raise Rejected(message, code)


def _apply_credentials(session: Any, tracking_uri: str) -> None:
    """The credentials MLflow's client would use: MLFLOW_TRACKING_* variables, else the
    `[mlflow]` section of ~/.mlflow/credentials (read here: importing mlflow takes seconds)."""
    env = os.environ.get
    username, password = env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD")
    if not (username and password):
        stored = _stored_credentials()
        username = username or stored.get("mlflow_tracking_username")
        password = password or stored.get("mlflow_tracking_password")
    if username and password:
        session.auth = (username, password)
    elif env("MLFLOW_TRACKING_TOKEN"):
        session.headers["Authorization"] = f"Bearer {env('MLFLOW_TRACKING_TOKEN')}"
    if (env("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() == "true":
        session.verify = False
    elif env("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        session.verify = env("MLFLOW_TRACKING_SERVER_CERT_PATH")
    if env("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        session.cert = env("MLFLOW_TRACKING_CLIENT_CERT_PATH")


def _stored_credentials() -> dict[str, str]:
    import configparser

    path = Path(os.environ.get("MLFLOW_CREDENTIALS_FILE", "~/.mlflow/credentials")).expanduser()
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return {}
    return dict(parser["mlflow"]) if parser.has_section("mlflow") else {}


def _proxied_base(artifact_uri: str, tracking_uri: str) -> str | None:
    """`mlflow-artifacts:/0/<run>/artifacts` -> the HTTP folder URL on the tracking server."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts":
        return None
    server = urllib.parse.urlparse(tracking_uri)
    host = f"{server.scheme}://{parsed.netloc or server.netloc}"
    prefix = server.path.rstrip("/") if not parsed.netloc else ""
    return f"{host}{prefix}/api/2.0/mlflow-artifacts/artifacts/{parsed.path.strip('/')}"


def _files(local_path: Path, artifact_path: str) -> Iterator[tuple[Path, str]]:
    """Each file to upload with its artifact path (a folder's contents go under
    `artifact_path`, a file to `artifact_path/<name>`, as both stores do)."""
    prefix = f"{artifact_path.strip('/')}/" if artifact_path.strip("/") else ""
    if local_path.is_file():
        yield local_path, prefix + local_path.name
        return
    for path in sorted(p for p in local_path.rglob("*") if p.is_file()):
        yield path, prefix + path.relative_to(local_path).as_posix()


def _experiment(body: dict[str, Any]) -> Experiment:
    return Experiment(
        str(body["experiment_id"]), body.get("name", ""), int(body.get("creation_time") or 0)
    )


def _remote(run: dict[str, Any]) -> RemoteRun:
    info = run["info"]
    return RemoteRun(
        info.get("run_id") or info["run_uuid"], str(info["experiment_id"]), info["artifact_uri"]
    )


def _metric(body: dict[str, Any]) -> Metric:
    return Metric(
        body["key"], float(body.get("value", 0.0)), int(body.get("step") or 0),
        int(body.get("timestamp") or 0),
    )  # fmt: skip


def _run_from_json(run: dict[str, Any]) -> Run:
    info, data = run["info"], run.get("data", {})
    tags = {t["key"]: t.get("value", "") for t in data.get("tags", [])}
    return Run(
        run_id=info.get("run_id") or info["run_uuid"],
        run_name=info.get("run_name") or tags.get("mlflow.runName", ""),
        experiment_id=str(info["experiment_id"]),
        status=status_of(info.get("status")),
        start_time=int(info.get("start_time") or 0),
        end_time=int(info["end_time"]) if info.get("end_time") else None,
        parent_run_id=tags.get(PARENT_TAG),
        params={p["key"]: p.get("value", "") for p in data.get("params", [])},
        metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics", [])},
        tags=tags,
        artifact_uri=info.get("artifact_uri", ""),
    )


def _json_float(value: float) -> float | str:
    """Protobuf JSON spells non-finite numbers as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
