"""Check that what a real autologged run recorded is declared in the integration's RECORDED
table (the README's "What is recorded" section is generated from it)."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import autotrack


def _pattern(declared: str) -> str:
    """`<X>` and `<context>` stand for a data variable's name; `/` ends a folder entry."""
    return re.sub(r"<[^>]+>", "*", declared).rstrip("/")


def artifact_paths(run_id: str, path: str = "") -> list[str]:
    out: list[str] = []
    for info in autotrack.list_artifacts(run_id, path):
        if info.is_dir and not (info.path == "model" or info.path.startswith("model")):
            out.extend(artifact_paths(run_id, info.path))
        else:
            out.append(info.path)
    return out


def undeclared(run: autotrack.Run, recorded: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Keys of `run` that no declared name matches (core `autotrack.*` tags excluded)."""
    found = {
        "params": list(run.params),
        "metrics": list(run.metrics),
        "tags": [t for t in run.tags if not t.startswith("autotrack.")],
        "artifacts": artifact_paths(run.run_id),
    }
    missing: dict[str, list[str]] = {}
    for kind, keys in found.items():
        patterns = [_pattern(name) for name in recorded.get(kind, {})]
        bad = [k for k in keys if not any(fnmatch.fnmatchcase(k, p) for p in patterns)]
        if bad:
            missing[kind] = sorted(bad)
    return missing


def assert_documented(recorded: dict[str, dict[str, Any]]) -> None:
    """Every run in the current store records only what `recorded` declares."""
    runs = autotrack.search_runs(max_results=10_000)
    assert runs, "no runs were recorded"
    problems = {run.run_name: undeclared(run, recorded) for run in runs}
    problems = {name: keys for name, keys in problems.items() if keys}
    assert not problems, f"recorded but not declared in RECORDED: {problems}"
