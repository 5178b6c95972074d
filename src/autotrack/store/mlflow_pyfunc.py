"""`python_function` loader for autotrack models MLflow has no flavor for here (Keras,
PyTorch): `mlflow.pyfunc.load_model(...)` imports this module and calls `_load_pyfunc`."""

from __future__ import annotations

import os
from typing import Any


class _AutotrackPyfunc:
    """What MLflow's PyFuncModel wraps: `predict(data)` through autotrack's Predictor, which
    checks the input against the saved signature."""

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._predictor.predict(data)

    def get_raw_model(self) -> Any:
        return self._predictor.model


def _load_pyfunc(path: str) -> _AutotrackPyfunc:
    """MLflow's consent to run pickled code (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true) is the
    only thing that lets a pickled model load; otherwise autotrack's safe loaders apply."""
    from autotrack.models import load_model

    trusted = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "").lower() == "true"
    return _AutotrackPyfunc(load_model(path, as_predictor=True, trust=trusted))
