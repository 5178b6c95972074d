"""Compile a search `Query` and order-by keys to SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autotrack.search import Comparison, Query, parse_order_by

_TABLES = {"metric": "metric_series", "param": "params", "tag": "tags"}


def _like_to_glob(pattern: str) -> str:
    """SQL LIKE is case-insensitive in SQLite; MLflow's LIKE is not, so use GLOB."""
    out = []
    for char in pattern:
        if char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


def _condition(column: str, clause: Comparison) -> tuple[str, Any]:
    if clause.op == "LIKE":
        return f"{column} GLOB ?", _like_to_glob(str(clause.value))
    if clause.op == "ILIKE":
        return f"{column} LIKE ?", clause.value
    return f"{column} {clause.op} ?", clause.value


def compile_where(query: Query) -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    for clause in query.clauses:
        if clause.kind == "attribute":
            condition, value = _condition(clause.key, clause)
            parts.append(condition)
            args.append(value)
        else:
            condition, value = _condition("x.value", clause)
            parts.append(
                f"EXISTS (SELECT 1 FROM {_TABLES[clause.kind]} x"
                f" WHERE x.run_id = runs.run_id AND x.key = ? AND {condition})"
            )
            args.extend((clause.key, value))
    return (" AND ".join(parts) or "1"), args


def compile_order_by(items: Sequence[str] | None) -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    for key in parse_order_by(items):
        direction = "ASC" if key.ascending else "DESC"
        if key.kind == "attribute":
            expr = key.key
        else:
            expr = (
                f"(SELECT x.value FROM {_TABLES[key.kind]} x"
                " WHERE x.run_id = runs.run_id AND x.key = ?)"
            )
            args.extend((key.key, key.key))
            parts.append(f"{expr} IS NULL")
        parts.append(f"{expr} {direction}")
    parts.append("start_time DESC")
    parts.append("run_id")
    return ", ".join(parts), args
