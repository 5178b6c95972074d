"""A real `mlflow server` process for tests: SQLite backend and a local artifact folder in a
temporary directory, on a free loopback port. It can be killed (SIGKILL, as a crash) and
started again on the same port with the same data."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def server_command() -> list[str] | None:
    """`$AUTOTRACK_MLFLOW_SERVER` (an `mlflow` executable, e.g. from another venv), else this
    interpreter's MLflow when the full package (with its server) is installed."""
    exe = os.environ.get("AUTOTRACK_MLFLOW_SERVER")
    if exe:
        return [exe]
    if importlib.util.find_spec("mlflow") and importlib.util.find_spec("mlflow.server"):
        sibling = Path(sys.executable).with_name("mlflow")
        if sibling.exists():
            return [str(sibling)]
        return [sys.executable, "-m", "mlflow"]
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.log_path = root / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> MlflowServer:
        command = server_command()
        if command is None:
            raise RuntimeError("no MLflow server available")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *command, "server", "--host", "127.0.0.1", "--port", str(self.port),
                    "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                    "--artifacts-destination", str(self.root / "artifacts"),
                    "--workers", "1",
                ],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log_path.read_text()[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"mlflow server did not start:\n{self.log_path.read_text()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process = None
        deadline = time.monotonic() + 10
        while self.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)

    def requests_to(self, endpoint: str) -> int:
        """How many requests the server logged for an endpoint (uvicorn's access log)."""
        text = self.log_path.read_text(errors="replace")
        return len(re.findall(rf'"[A-Z]+ /api/2\.0/mlflow/{re.escape(endpoint)}[ ?]', text))


def available() -> bool:
    return server_command() is not None
