"""Save, log and load models of every supported framework in one directory format.

`save_model(model, path)`, `log_model(model)` and `load_model(uri)` dispatch on the model's
type; no framework (nor numpy or pandas) is imported until a model of that kind is handled.
"""

from __future__ import annotations

from autotrack.models.api import ModelInfo, Predictor, load_model, log_model, save_model
from autotrack.models.errors import (
    ModelError,
    ModelIntegrityError,
    PickleWarning,
    SignatureError,
    UntrustedModelError,
)
from autotrack.models.signature import Signature, Spec, infer_signature

__all__ = [
    "ModelError",
    "ModelInfo",
    "ModelIntegrityError",
    "PickleWarning",
    "Predictor",
    "Signature",
    "SignatureError",
    "Spec",
    "UntrustedModelError",
    "infer_signature",
    "load_model",
    "log_model",
    "save_model",
]
