"""Plain data objects shared by the tracking API, the stores, the CLI and the UI."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RunStatus(str, enum.Enum):
    """Lifecycle of a run; values are the strings stored and shown to users."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    creation_time: int  # milliseconds since the epoch


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history."""

    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch


@dataclass(frozen=True)
class FileInfo:
    """An artifact entry: `path` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None


@dataclass(frozen=True)
class Run:
    """A snapshot of a run as read from the store."""

    run_id: str
    run_name: str
    experiment_id: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_uri: str = ""

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time
