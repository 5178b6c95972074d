"""The embedded store: one SQLite database (WAL) plus an artifact folder per run.

Metric points are buffered in memory and written in batches by a background writer thread,
on a short interval, when the buffer grows, and on `flush()` (every read flushes first).
The buffer is bounded: past `max_buffered_points` the logging thread writes the batch itself
(back-pressure, never an unbounded queue). Several processes may write one store at once.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from autotrack import artifacts
from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.search import Query
from autotrack.store import liveness
from autotrack.store.naming import generated_run_name
from autotrack.store.sql import compile_order_by, compile_where

DEFAULT_EXPERIMENT = "Default"
DATABASE_NAME = "runs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    creation_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    run_name TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    parent_run_id TEXT,
    host TEXT,
    pid INTEGER,
    pid_started TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment_id, start_time);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metric_series (
    series_id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL, key TEXT NOT NULL,
    value REAL, step INTEGER NOT NULL, timestamp INTEGER NOT NULL, count INTEGER NOT NULL,
    UNIQUE (run_id, key)
);
CREATE TABLE IF NOT EXISTS metrics (
    series_id INTEGER NOT NULL, value REAL, step INTEGER NOT NULL, timestamp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics (series_id);
"""

# One row per (run, key) holds the latest point (greatest step, then timestamp, as MLflow
# does) and the point count; points refer to it by an integer id, which keeps inserts fast.
_UPSERT_SERIES = """
INSERT INTO metric_series (run_id, key, value, step, timestamp, count)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    value = CASE WHEN excluded.step > step OR (excluded.step = step
        AND excluded.timestamp >= timestamp) THEN excluded.value ELSE value END,
    timestamp = CASE WHEN excluded.step > step OR (excluded.step = step
        AND excluded.timestamp >= timestamp) THEN excluded.timestamp ELSE timestamp END,
    step = MAX(step, excluded.step),
    count = count + excluded.count
RETURNING series_id
"""

MetricRow = tuple[str, str, float, int, int]  # run_id, key, value, step, timestamp


def _now_ms() -> int:
    return int(time.time() * 1000)


class SQLiteStore:
    """Embedded store rooted at a folder: `<root>/runs.db` and `<root>/artifacts/<run_id>/`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        flush_interval: float | None = None,
        max_buffered_points: int = 200_000,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        self.artifact_root = self.root / "artifacts"
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        self.flush_interval = (
            float(os.environ.get("AUTOTRACK_FLUSH_INTERVAL", "1.0"))
            if flush_interval is None
            else flush_interval
        )
        self.max_buffered_points = max_buffered_points
        self._wake_at = max(1, min(10_000, max_buffered_points // 2))
        self._db_lock = threading.RLock()
        self._db = self._connect()
        self._buffer: list[MetricRow] = []
        self._buffer_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.writer_error: BaseException | None = None
        self._writer = threading.Thread(
            target=self._write_loop, name="autotrack-writer", daemon=True
        )
        self._writer.start()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.root / DATABASE_NAME, timeout=60, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
        with self._transaction(db):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO experiments VALUES ('0', ?, ?)",
                (DEFAULT_EXPERIMENT, _now_ms()),
            )
        return db

    class _transaction:
        """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on error; safe across processes."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _write(self) -> _transaction:
        return self._transaction(self._db)

    # -- experiments --------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        with self._db_lock:
            found = self.get_experiment_by_name(name)
            if found:
                return found
            with self._write() as db:
                next_id = db.execute(
                    "SELECT COALESCE(MAX(CAST(experiment_id AS INTEGER)), 0) + 1 FROM experiments"
                ).fetchone()[0]
                db.execute(
                    "INSERT OR IGNORE INTO experiments VALUES (?, ?, ?)",
                    (str(next_id), name, _now_ms()),
                )
            found = self.get_experiment_by_name(name)
            assert found is not None
            return found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._db_lock:
            row = self._db.execute(
                "SELECT experiment_id, name, creation_time FROM experiments WHERE name = ?", (name,)
            ).fetchone()
        return Experiment(*row) if row else None

    def list_experiments(self) -> list[Experiment]:
        with self._db_lock:
            rows = self._db.execute(
                "SELECT experiment_id, name, creation_time FROM experiments"
                " ORDER BY CAST(experiment_id AS INTEGER)"
            ).fetchall()
        return [Experiment(*row) for row in rows]

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None,
        tags: dict[str, str],
        parent_run_id: str | None,
        start_time: int,
    ) -> Run:
        run_id = uuid.uuid4().hex
        name = run_name or generated_run_name(run_id)
        with self._db_lock, self._write() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'RUNNING', ?, NULL, ?, ?, ?, ?)",
                (
                    run_id,
                    experiment_id,
                    name,
                    start_time,
                    parent_run_id,
                    socket.gethostname(),
                    os.getpid(),
                    liveness.process_started(os.getpid()),
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in tags.items()],
            )
        (self.artifact_root / run_id).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def finish_run(self, run_id: str, status: RunStatus, end_time: int) -> None:
        self.flush()
        with self._db_lock, self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE run_id = ?",
                (RunStatus(status).value, end_time, run_id),
            )

    def get_run(self, run_id: str) -> Run:
        self.flush()
        with self._db_lock:
            rows = self._db.execute(f"{_RUN_COLUMNS} WHERE run_id = ?", (run_id,)).fetchall()
            if not rows:
                raise KeyError(f"no run with id '{run_id}' in the store at {self.uri}")
            return self._runs_from_rows(rows)[0]

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None,
        query: Query,
        order_by: Sequence[str] | None,
        max_results: int,
    ) -> list[Run]:
        self.flush()
        where, args = compile_where(query)
        if experiment_ids is not None:
            marks = ",".join("?" * len(experiment_ids))
            where = f"({where}) AND experiment_id IN ({marks})"
            args = [*args, *experiment_ids]
        order, order_args = compile_order_by(order_by)
        sql = f"{_RUN_COLUMNS} WHERE {where} ORDER BY {order} LIMIT ?"
        with self._db_lock:
            rows = self._db.execute(sql, [*args, *order_args, int(max_results)]).fetchall()
            return self._runs_from_rows(rows)

    def _runs_from_rows(self, rows: list[tuple]) -> list[Run]:
        rows = self._reap_dead(rows)
        ids = [row[0] for row in rows]
        params = self._key_values("SELECT run_id, key, value FROM params", ids)
        tags = self._key_values("SELECT run_id, key, value FROM tags", ids)
        latest = self._key_values("SELECT run_id, key, value FROM metric_series", ids)
        return [
            Run(
                run_id=row[0],
                experiment_id=row[1],
                run_name=row[2],
                status=RunStatus(row[3]),
                start_time=row[4],
                end_time=row[5],
                parent_run_id=row[6],
                params=params.get(row[0], {}),
                metrics={k: _float(v) for k, v in latest.get(row[0], {}).items()},
                tags=tags.get(row[0], {}),
                artifact_uri=str(self.artifact_root / row[0]),
            )
            for row in rows
        ]

    def _key_values(self, select: str, run_ids: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for start in range(0, len(run_ids), 900):
            chunk = run_ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value in self._db.execute(
                f"{select} WHERE run_id IN ({marks})", chunk
            ):
                out.setdefault(run_id, {})[key] = value
        return out

    def _reap_dead(self, rows: list[tuple]) -> list[tuple]:
        """Report runs left RUNNING by a dead process on this host as KILLED (and persist it)."""
        host = socket.gethostname()
        out = []
        for row in rows:
            run_id, status, row_host, pid, started = row[0], row[3], row[7], row[8], row[9]
            if status == "RUNNING" and row_host == host and not liveness.alive(pid, started):
                end_time = self._last_activity(run_id) or row[4]
                with self._write() as db:
                    db.execute(
                        "UPDATE runs SET status = 'KILLED', end_time = ?"
                        " WHERE run_id = ? AND status = 'RUNNING'",
                        (end_time, run_id),
                    )
                row = (*row[:3], "KILLED", row[4], end_time, *row[6:])
            out.append(row)
        return out

    def _last_activity(self, run_id: str) -> int | None:
        found = self._db.execute(
            "SELECT MAX(timestamp) FROM metric_series WHERE run_id = ?", (run_id,)
        ).fetchone()
        return found[0] if found else None

    # -- params, tags, metrics ----------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        keep_existing: bool = False,
    ) -> None:
        if params or tags:
            with self._db_lock, self._write() as db:
                if params:
                    if not keep_existing:
                        self._check_params(db, run_id, params)
                    db.executemany(
                        "INSERT OR IGNORE INTO params VALUES (?, ?, ?)",
                        [(run_id, k, v) for k, v in params.items()],
                    )
                if tags:
                    db.executemany(
                        "INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                        [(run_id, k, v) for k, v in tags.items()],
                    )
        if metrics:
            self.add_metric_rows([(run_id, m.key, m.value, m.step, m.timestamp) for m in metrics])

    @staticmethod
    def _check_params(db: sqlite3.Connection, run_id: str, params: dict[str, str]) -> None:
        keys = list(params)
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for key, old in db.execute(
                f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})",
                [run_id, *chunk],
            ):
                if old != params[key]:
                    raise ValueError(
                        f"param '{key}' was already logged as {old!r} for run {run_id}; "
                        f"params are write-once and cannot change to {params[key]!r}"
                    )

    def add_metric_rows(self, rows: Iterable[MetricRow]) -> None:
        """Buffer metric points; the fast path of `log_metric`."""
        with self._buffer_lock:
            self._buffer.extend(rows)
            size = len(self._buffer)
        if size >= self._wake_at:
            self._on_full(size)

    def add_metric_row(self, row: MetricRow) -> None:
        with self._buffer_lock:
            self._buffer.append(row)
            size = len(self._buffer)
        if size >= self._wake_at:
            self._on_full(size)

    def _on_full(self, size: int) -> None:
        if size >= self.max_buffered_points:
            self.flush()  # back-pressure: the producer pays for the write
        else:
            self._wake.set()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT s.key, m.value, m.step, m.timestamp FROM metric_series s"
                " JOIN metrics m ON m.series_id = s.series_id WHERE s.run_id = ? AND s.key = ?"
                " ORDER BY m.step, m.timestamp, m.rowid",
                (run_id, key),
            ).fetchall()
        return [Metric(k, _float(v), s, t) for k, v, s, t in rows]

    def metric_keys(self, run_id: str) -> dict[str, int]:
        """Each metric key of a run with its number of points."""
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT key, count FROM metric_series WHERE run_id = ? ORDER BY key", (run_id,)
            ).fetchall()
        return dict(rows)

    # -- the writer -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered point now (in the calling thread)."""
        with self._write_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
            if batch:
                self._write_metrics(batch)

    def _write_metrics(self, batch: list[MetricRow]) -> None:
        latest: dict[tuple[str, str], list] = {}
        for run_id, key, value, step, timestamp in batch:
            point = latest.get((run_id, key))
            if point is None:
                latest[(run_id, key)] = [run_id, key, value, step, timestamp, 1]
            else:
                if (step, timestamp) >= (point[3], point[4]):
                    point[2], point[3], point[4] = value, step, timestamp
                point[5] += 1
        with self._db_lock, self._write() as db:
            series = {
                slot: db.execute(_UPSERT_SERIES, point).fetchone()[0]
                for slot, point in latest.items()
            }
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?)",
                [(series[(r, k)], v, step, t) for r, k, v, step, t in batch],
            )

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # kept for the tracking layer to report
                self.writer_error = exc

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()

    # -- artifacts ------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None) -> None:
        source = Path(local_path)
        if not source.exists():
            raise FileNotFoundError(f"cannot log artifact: no such file or folder {local_path!r}")
        target_dir = artifacts.resolve(self.artifact_root / run_id, artifact_path or "")
        target_dir.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target_dir, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target_dir / source.name)

    def list_artifacts(self, run_id: str, path: str = "") -> list[FileInfo]:
        return artifacts.list_dir(self.artifact_root / run_id, path)

    def artifact_local_path(self, run_id: str, path: str = "") -> str:
        return str(artifacts.resolve(self.artifact_root / run_id, path))


_RUN_COLUMNS = (
    "SELECT run_id, experiment_id, run_name, status, start_time, end_time, parent_run_id,"
    " host, pid, pid_started FROM runs"
)


def _float(value: float | None) -> float:
    """SQLite stores NaN as NULL; metric values are never otherwise NULL."""
    return float("nan") if value is None else value
