"""scikit-learn estimators (and pipelines) saved with skops; pickle only as the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotrack.models import objects
from autotrack.models.flavors import Saved, class_path, model_path
from autotrack.models.signature import type_is

NAME = "sklearn"
FORMATS = objects.FORMATS


def matches(model: Any) -> bool:
    return type_is(model, "sklearn", "BaseEstimator")


def save(model: Any, model_dir: Path, serialization_format: str | None) -> Saved:
    import sklearn

    written = objects.dump(model, model_dir, "model", serialization_format)
    fmt = written["serialization_format"]
    info: dict[str, Any] = {"model_class": class_path(type(model))}
    if fmt == "skops":
        info["trusted_types"] = written["trusted_types"]
    return Saved(
        model_file=written["file"],
        serialization_format=fmt,
        framework="sklearn",
        framework_version=sklearn.__version__,
        requirements=[("scikit-learn",), ("numpy",), ("scipy",), *objects.requirements(fmt)],
        info=info,
    )


def load(model_dir: Path, descriptor: dict[str, Any], *, trust: bool, **_: Any) -> Any:
    return objects.load(
        model_path(model_dir, descriptor),
        descriptor["serialization_format"],
        descriptor.get("trusted_types"),
        trust=trust,
    )


def predict(model: Any, data: Any) -> Any:
    return model.predict(data)
