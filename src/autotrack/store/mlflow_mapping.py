"""How autotrack's names map to MLflow's: tracking URIs, run tags, filters and order-by keys.
Pure functions, no I/O: what the MLflow backend sends is decided here."""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence

from autotrack.search import Comparison, FilterError, Query, parse_order_by

SCHEME = "mlflow"
PARENT_TAG = "mlflow.parentRunId"

# autotrack's context tags -> the tags MLflow's UI reads ("Source", "User", git commit...).
_TAG_ALIASES = {
    "autotrack.source.name": "mlflow.source.name",
    "autotrack.user": "mlflow.user",
    "autotrack.source.git_commit": "mlflow.source.git.commit",
    "autotrack.integration": "mlflow.autologging",
}
_SOURCE_TYPES = {"SCRIPT": "LOCAL", "LOCAL": "LOCAL", "NOTEBOOK": "NOTEBOOK", "JOB": "JOB"}


def is_mlflow_uri(uri: str) -> bool:
    return uri == SCHEME or uri.startswith((f"{SCHEME}:", f"{SCHEME}+"))


def tracking_uri_of(uri: str) -> str:
    """The MLflow tracking URI an autotrack URI selects:

    - `mlflow+http://host:5000`, `mlflow+https://...` -> the tracking server;
    - `mlflow+sqlite:///path.db`, `mlflow+postgresql://...`, `mlflow+file:///dir` -> that store;
    - `mlflow` or `mlflow:` -> `$MLFLOW_TRACKING_URI` (else MLflow's own default).
    """
    if uri.startswith(f"{SCHEME}+"):
        target = uri[len(SCHEME) + 1 :]
        if not target:
            raise ValueError(f"tracking URI {uri!r} names no MLflow server after 'mlflow+'")
        return target
    if uri in (SCHEME, f"{SCHEME}:", f"{SCHEME}://"):
        target = os.environ.get("MLFLOW_TRACKING_URI", "")
        if target:
            return target
        import mlflow

        return str(mlflow.get_tracking_uri())
    raise ValueError(
        f"cannot read tracking URI {uri!r}: use mlflow+http://host:port, "
        "mlflow+sqlite:///path.db or mlflow: (with MLFLOW_TRACKING_URI set)"
    )


def autotrack_uri_of(target: str) -> str:
    """`http://host:5000` -> `mlflow+http://host:5000` (already-prefixed URIs are kept)."""
    return target if is_mlflow_uri(target) else f"{SCHEME}+{target}"


def mlflow_tags(tags: dict[str, str]) -> dict[str, str]:
    """`tags` plus the MLflow-named twins of autotrack's source tags."""
    out = dict(tags)
    for ours, theirs in _TAG_ALIASES.items():
        if ours in tags and theirs not in tags:
            out[theirs] = tags[ours]
    source_type = tags.get("autotrack.source.type")
    if source_type and "mlflow.source.type" not in tags:
        out["mlflow.source.type"] = _SOURCE_TYPES.get(source_type, "UNKNOWN")
    return out


def _literal(value: float | str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            raise FilterError("MLflow cannot compare metrics with NaN")
        return repr(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise FilterError(f"MLflow filters cannot hold both quote characters: {text!r}")


def _attribute(key: str) -> str:
    return f"tags.`{PARENT_TAG}`" if key == "parent_run_id" else f"attributes.{key}"


def _clause(clause: Comparison) -> str:
    if clause.kind == "attribute":
        subject = _attribute(clause.key)
    else:
        subject = f"{clause.kind}s.`{clause.key}`"
    return f"{subject} {clause.op} {_literal(clause.value)}"


def to_mlflow_filter(query: Query) -> tuple[str, set[str] | None, set[str]]:
    """MLflow filter string, plus the experiment ids the query requires (None: any) and
    those it excludes: MLflow takes experiments as a separate argument, not a filter."""
    parts: list[str] = []
    include: set[str] | None = None
    exclude: set[str] = set()
    for clause in query.clauses:
        if clause.kind == "attribute" and clause.key == "experiment_id":
            if clause.op == "=":
                wanted = {str(clause.value)}
                include = wanted if include is None else include & wanted
            elif clause.op == "!=":
                exclude.add(str(clause.value))
            else:
                raise FilterError("experiment_id supports only '=' and '!=' with MLflow")
            continue
        parts.append(_clause(clause))
    return " and ".join(parts), include, exclude


def to_mlflow_order_by(items: Sequence[str] | None) -> list[str]:
    out = []
    for key in parse_order_by(items):
        direction = "ASC" if key.ascending else "DESC"
        subject = _attribute(key.key) if key.kind == "attribute" else f"{key.kind}s.`{key.key}`"
        out.append(f"{subject} {direction}")
    return out


_MLFLOW_KEY_FORBIDDEN = re.compile(r"[^\w.\-/ :]")


@functools.lru_cache(maxsize=4096)
def mlflow_metric_key(key: str) -> str:
    """MLflow accepts letters, digits, `_ - . / :` and spaces in keys; `ndcg@5` becomes
    `ndcg_at_5` (MLflow's own spelling) and anything else `_`."""
    return _MLFLOW_KEY_FORBIDDEN.sub("_", key.replace("@", "_at_"))
