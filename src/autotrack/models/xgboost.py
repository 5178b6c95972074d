"""XGBoost Boosters and scikit-learn wrappers, saved as UBJSON (`model.ubj`).

The wrapper's own `save_model` stores its sklearn attributes in the same file, so loading
creates the recorded wrapper class and calls its `load_model` (xgboost >= 1.6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotrack.models.flavors import Saved, class_path, model_path, resolve_class
from autotrack.models.signature import type_is

NAME = "xgboost"
FORMATS = ("ubj",)
MODEL_FILE = "model.ubj"


def matches(model: Any) -> bool:
    return type_is(model, "xgboost", "Booster", "XGBModel")


def save(model: Any, model_dir: Path, serialization_format: str | None) -> Saved:
    import xgboost

    model.save_model(str(model_dir / MODEL_FILE))
    wrapper = isinstance(model, xgboost.XGBModel)
    requirements = [("xgboost", "xgboost-cpu"), ("numpy",), ("scipy",)]
    if wrapper:
        requirements.append(("scikit-learn",))
    return Saved(
        model_file=MODEL_FILE,
        serialization_format="ubj",
        framework="xgboost",
        framework_version=xgboost.__version__,
        requirements=requirements,
        info={"model_class": class_path(type(model)), "sklearn_wrapper": wrapper},
    )


def load(
    model_dir: Path, descriptor: dict[str, Any], *, trust: bool, model_class: Any = None, **_: Any
) -> Any:
    import xgboost

    path = str(model_path(model_dir, descriptor))
    if not descriptor.get("sklearn_wrapper") and model_class is None:
        booster = xgboost.Booster()
        booster.load_model(path)
        return booster
    if model_class is None:
        model_class = resolve_class(
            descriptor["model_class"], "xgboost", trust=trust, base=xgboost.XGBModel
        )
    model = model_class() if isinstance(model_class, type) else model_class
    model.load_model(path)
    return model


def predict(model: Any, data: Any) -> Any:
    if type_is(model, "xgboost", "Booster"):
        import xgboost

        return model.predict(xgboost.DMatrix(data))
    return model.predict(data)
