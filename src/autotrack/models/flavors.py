"""The flavor registry: which module saves and loads which kind of model.

A flavor is a module of this package with `NAME`, `FORMATS`, `matches(model)`,
`save(model, model_dir, serialization_format) -> Saved`, `load(model_dir, descriptor, ...)` and
`predict(model, data)`. `matches` looks at class names along the MRO only, so finding the
flavor of a model never imports a framework the user did not import.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from autotrack.models.errors import ModelError, UntrustedModelError

# Most specific first: XGBoost and LightGBM wrappers are also scikit-learn estimators.
FLAVORS = ("xgboost", "lightgbm", "keras", "pytorch", "sklearn")


@dataclass
class Saved:
    """What a flavor wrote into the model directory, for model.json and requirements.txt."""

    model_file: str
    serialization_format: str
    framework: str
    framework_version: str
    requirements: list[tuple[str, ...]]
    info: dict[str, Any] = field(default_factory=dict)


def get_flavor(name: str) -> ModuleType:
    if name not in FLAVORS:
        raise ModelError(f"unknown model flavor {name!r}; known: {', '.join(FLAVORS)}")
    return importlib.import_module(f"autotrack.models.{name}")


def flavor_for(model: Any) -> ModuleType:
    """The flavor module that saves `model`, or an error naming the supported kinds."""
    for name in FLAVORS:
        module = get_flavor(name)
        if module.matches(model):
            return module
    raise ModelError(
        f"cannot save a {class_path(type(model))}: autotrack saves scikit-learn estimators,"
        " XGBoost and LightGBM models, Keras models and PyTorch modules or state dicts"
    )


def check_format(flavor: ModuleType, serialization_format: str | None) -> str | None:
    formats: tuple[str, ...] = flavor.FORMATS
    if serialization_format is not None and serialization_format not in formats:
        raise ModelError(
            f"serialization_format {serialization_format!r} is not available for"
            f" {flavor.NAME} models; choose one of {', '.join(formats)}"
        )
    return serialization_format


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_class(path: str, allowed_package: str, *, trust: bool, base: type) -> type:
    """Import the class recorded at save time. Classes outside `allowed_package` (a user's
    subclass) are imported only with trust=True, since importing runs that module's code."""
    module_name, _, qualname = path.rpartition(".")
    top = module_name.split(".", 1)[0]
    if top != allowed_package and not trust:
        raise UntrustedModelError(
            f"the model was saved from class {path}, outside {allowed_package}; pass"
            " model_class=<that class>, or trust=True to import it"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot import the model class {path}: {exc}") from exc
    if not (isinstance(target, type) and issubclass(target, base)):
        raise UntrustedModelError(f"{path} is not a {class_path(base)}; refusing to use it")
    return target


def resolvable(type_name: str) -> bool:
    """Whether a 'module.QualName' recorded by skops can be found again by name at load time
    (a lambda, a local class or a C type such as `_thread.lock` cannot)."""
    if "<" in type_name:
        return False
    parts = type_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target: Any = module
        for part in parts[cut:]:
            if not hasattr(target, part):
                return False
            target = getattr(target, part)
        return True
    return True  # module not imported here: skops will import it at load time


def model_path(model_dir: Path, descriptor: dict[str, Any]) -> Path:
    return model_dir / str(descriptor["model_file"])
