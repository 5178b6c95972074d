"""LightGBM Boosters and scikit-learn wrappers: the booster as text (`model.txt`).

LightGBM has no public way to rebuild a fitted `LGBMClassifier` from a Booster, and the private
attributes it needs (`_n_classes`, `_le`/`_class_map`, `fitted_`...) changed between 3.3 and
4.x. So the wrapper is saved *without* its booster (a shallow copy, `_Booster=None`) through
skops as `wrapper.skops` (pickle fallback, as for sklearn), and the booster is put back at load.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from autotrack.models import objects
from autotrack.models.flavors import Saved, class_path, model_path
from autotrack.models.signature import type_is

NAME = "lightgbm"
FORMATS = ("text", *objects.FORMATS)
MODEL_FILE = "model.txt"


def matches(model: Any) -> bool:
    return type_is(model, "lightgbm", "Booster", "LGBMModel")


def save(model: Any, model_dir: Path, serialization_format: str | None) -> Saved:
    import lightgbm

    wrapper = isinstance(model, lightgbm.LGBMModel)
    booster = model.booster_ if wrapper else model
    booster.save_model(str(model_dir / MODEL_FILE))
    info: dict[str, Any] = {"model_class": class_path(type(model)), "sklearn_wrapper": wrapper}
    requirements: list[tuple[str, ...]] = [("lightgbm",), ("numpy",), ("scipy",)]
    if wrapper:
        shell = copy.copy(model)
        shell._Booster = None
        state_format = None if serialization_format == "text" else serialization_format
        written = objects.dump(shell, model_dir, "wrapper", state_format)
        info["wrapper_file"] = written["file"]
        info["wrapper_format"] = written["serialization_format"]
        if "trusted_types" in written:
            info["trusted_types"] = written["trusted_types"]
        requirements += [("scikit-learn",), *objects.requirements(info["wrapper_format"])]
    return Saved(
        model_file=MODEL_FILE,
        serialization_format="text",
        framework="lightgbm",
        framework_version=lightgbm.__version__,
        requirements=requirements,
        info=info,
    )


def load(model_dir: Path, descriptor: dict[str, Any], *, trust: bool, **_: Any) -> Any:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(model_path(model_dir, descriptor)))
    if not descriptor.get("sklearn_wrapper"):
        return booster
    model = objects.load(
        model_dir / descriptor["wrapper_file"],
        descriptor["wrapper_format"],
        descriptor.get("trusted_types"),
        trust=trust,
    )
    model._Booster = booster
    return model


def predict(model: Any, data: Any) -> Any:
    return model.predict(data)
