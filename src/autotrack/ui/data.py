"""What the page is sent, computed from store entities: pure functions, no I/O.

Runs become JSON-ready dicts; children are folded under their parent; sorting, column keys and
the compare table are worked out here so they can be tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from autotrack.entities import Metric, Run
from autotrack.ui.downsample import downsample

ATTRIBUTE_COLUMNS = ("run_name", "status", "start_time", "duration", "experiment_id")
_KINDS = {"metrics": "metrics", "params": "params", "tags": "tags"}


def json_number(value: float) -> float | str:
    """JSON has no NaN or infinity: send those as the strings a user would read."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def run_summary(run: Run) -> dict[str, Any]:
    """A run as the page sees it (values stay raw text: the page escapes them on display)."""
    return {
        "run_id": run.run_id,
        "run_name": run.run_name,
        "experiment_id": run.experiment_id,
        "status": str(run.status),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_ms": run.duration_ms,
        "parent_run_id": run.parent_run_id,
        "params": dict(run.params),
        "metrics": {k: json_number(v) for k, v in run.metrics.items()},
        "tags": dict(run.tags),
    }


def _column_value(run: Run, column: str) -> Any:
    kind, _, key = column.partition(".")
    if kind in ("attributes", "attribute", "") and not key:
        kind, key = "attributes", kind
    if kind in ("attributes", "attribute"):
        if key == "duration":
            return run.duration_ms
        return getattr(run, key, None) if key in ATTRIBUTE_COLUMNS else None
    if kind in _KINDS:
        return getattr(run, _KINDS[kind]).get(key)
    raise ValueError(
        f"cannot sort by {column!r}: use attributes.<name>, metrics.<key>, params.<key> or "
        "tags.<key>"
    )


def _sortable(value: Any) -> tuple[int, float | str]:
    """Numbers (also numeric param strings like '0.01') before text, compared as numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value)) if not math.isnan(value) else (2, "")
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return (1, text.lower())
    return (0, number) if not math.isnan(number) else (2, "")


def sort_runs(runs: Sequence[Run], column: str | None, descending: bool) -> list[Run]:
    """Runs ordered by one column; runs without a value for it always come last."""
    if not column:
        return list(runs)
    present: list[tuple[tuple[int, float | str], Run]] = []
    missing: list[Run] = []
    for run in runs:
        value = _column_value(run, column)
        if value is None:
            missing.append(run)
        else:
            present.append((_sortable(value), run))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [run for _, run in present] + missing


def fold_children(
    runs: Sequence[Run], offset: int = 0, limit: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Table rows: a run whose parent is among `runs` goes under it, order kept. Returns the
    number of top-level rows and the rows of one page (only those are turned into JSON)."""
    by_id = {run.run_id: run for run in runs}
    children: dict[str, list[Run]] = {}
    top: list[Run] = []
    for run in runs:
        parent = run.parent_run_id
        if parent and parent in by_id and parent != run.run_id:
            children.setdefault(parent, []).append(run)
        else:
            top.append(run)

    def node(run: Run, seen: frozenset[str]) -> dict[str, Any]:
        row = run_summary(run)
        kids = [k for k in children.get(run.run_id, []) if k.run_id not in seen]
        row["children"] = [node(k, seen | {k.run_id}) for k in kids]
        return row

    end = len(top) if limit is None else offset + limit
    return len(top), [node(run, frozenset({run.run_id})) for run in top[offset:end]]


def column_keys(runs: Iterable[Run]) -> dict[str, list[dict[str, Any]]]:
    """Every param, metric and tag key among `runs`, most common first, with its count."""
    counts: dict[str, Counter[str]] = {"params": Counter(), "metrics": Counter(), "tags": Counter()}
    for run in runs:
        counts["params"].update(run.params.keys())
        counts["metrics"].update(run.metrics.keys())
        counts["tags"].update(run.tags.keys())
    return {
        kind: [
            {"key": key, "count": count}
            for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        for kind, counter in counts.items()
    }


def compare_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per param, metric and tag key of the selected runs, flagged where they differ."""
    rows: list[dict[str, Any]] = []
    for kind in ("params", "metrics", "tags"):
        keys = sorted({key for run in runs for key in getattr(run, kind)})
        for key in keys:
            raw = [getattr(run, kind).get(key) for run in runs]
            values = [json_number(v) if isinstance(v, float) else v for v in raw]
            distinct = {repr(v) for v in values}
            rows.append({"kind": kind, "key": key, "values": values, "differs": len(distinct) > 1})
    return rows


def metric_series(history: Sequence[Metric], max_points: int) -> dict[str, Any]:
    """A history ready to chart: [step, value, timestamp] triples, downsampled if long."""
    points = [(m.step, m.value, m.timestamp) for m in history]
    kept = downsample(points, max_points)
    return {
        "total": len(points),
        "downsampled": len(kept) < len(points),
        "points": [[step, json_number(value), stamp] for step, value, stamp in kept],
    }
