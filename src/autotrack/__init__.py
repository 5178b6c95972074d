"""autotrack: automatic, safe experiment tracking.

`autotrack.autolog()` records every fit in the frameworks you use; `autotrack.sklearn.autolog()`
(and `xgboost`, `lightgbm`, `tensorflow`/`keras`, `pytorch`/`torch`) enables one. Nothing here
imports a framework: integration modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from autotrack.entities import Experiment, FileInfo, Metric, Run, RunStatus
from autotrack.search import FilterError
from autotrack.tracking import (
    ActiveRun,
    RunHandle,
    active_run,
    artifact_path,
    artifact_uri,
    create_run,
    end_run,
    flush,
    get_metric_history,
    get_run,
    get_tracking_uri,
    list_artifacts,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__version__ = "0.1.0"

_LAZY_FUNCTIONS = {
    "autolog": ("autotrack.autolog", "autolog_all"),
    "status": ("autotrack.autolog", "status"),
    "save_model": ("autotrack.models", "save_model"),
    "log_model": ("autotrack.models", "log_model"),
    "load_model": ("autotrack.models", "load_model"),
}


def __getattr__(name: str) -> Any:
    """`autotrack.sklearn` -> `autotrack.integrations.sklearn`, and lazy API functions."""
    if name in _LAZY_FUNCTIONS:
        module, attribute = _LAZY_FUNCTIONS[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    from autotrack.integrations import find

    info = find(name)
    if info is None:
        raise AttributeError(f"module 'autotrack' has no attribute {name!r}")
    integration = importlib.import_module(f"autotrack.integrations.{info.module}")
    globals()[name] = integration
    return integration


__all__ = [
    "ActiveRun",
    "Experiment",
    "FileInfo",
    "FilterError",
    "Metric",
    "Run",
    "RunHandle",
    "RunStatus",
    "active_run",
    "artifact_path",
    "artifact_uri",
    "autolog",
    "create_run",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "list_artifacts",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "save_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "status",
]
