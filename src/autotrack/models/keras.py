"""Keras models saved as `model.keras`; weights only (`model.weights.h5`) when Keras cannot
serialise the model (a subclass without `get_config`), with a warning.

Loading uses Keras' safe mode (no Python lambdas deserialised) unless trust=True.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

from autotrack.models.errors import ModelError, UntrustedModelError
from autotrack.models.flavors import Saved, class_path, model_path
from autotrack.models.signature import Signature, type_is

NAME = "keras"
FORMATS = ("keras", "weights")
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "model.weights.h5"
_PACKAGES = ("keras", "tf_keras", "tensorflow")
_BACKENDS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
    "torch": ("torch",),
    "jax": ("jax",),
}


class WeightsOnlyWarning(UserWarning):
    """Only the weights were saved: loading needs the model's class."""


def matches(model: Any) -> bool:
    return any(type_is(model, package, "Model") for package in _PACKAGES)


def save(model: Any, model_dir: Path, serialization_format: str | None) -> Saved:
    package = _package_of(model)
    keras = _keras_module(package)
    backend = str(keras.backend.backend())
    requirements = [
        ("tf-keras",) if package == "tf_keras" else ("keras",),
        _BACKENDS.get(backend, (backend,)),
        ("numpy",),
        ("h5py",),
    ]
    info = {"model_class": class_path(type(model)), "keras_package": package,
            "keras_backend": backend}  # fmt: skip
    saved = Saved(
        model_file=MODEL_FILE,
        serialization_format="keras",
        framework=package,
        framework_version=str(getattr(keras, "__version__", "unknown")),
        requirements=requirements,
        info=info,
    )
    if serialization_format != "weights":
        try:
            model.save(str(model_dir / MODEL_FILE))
            return saved
        except Exception as exc:
            (model_dir / MODEL_FILE).unlink(missing_ok=True)
            if serialization_format == "keras":
                raise ModelError(f"Keras cannot save {class_path(type(model))}: {exc}") from exc
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            warnings.warn(
                f"Keras cannot save {class_path(type(model))} as a whole ({reason}); saved its"
                " weights only. Load them with load_model(..., model_class=<the class>).",
                WeightsOnlyWarning,
                stacklevel=4,
            )
    model.save_weights(str(model_dir / WEIGHTS_FILE))
    saved.model_file, saved.serialization_format = WEIGHTS_FILE, "weights"
    return saved


def load(
    model_dir: Path,
    descriptor: dict[str, Any],
    *,
    trust: bool,
    model_class: Any = None,
    signature: Signature | None = None,
    **_: Any,
) -> Any:
    keras = _keras_module(descriptor.get("keras_package", "keras"))
    path = str(model_path(model_dir, descriptor))
    if descriptor["serialization_format"] == "keras" and _is_class_or_none(model_class):
        try:
            return _load_whole(keras, path, model_class, trust)
        except UntrustedModelError:
            raise
        except Exception as exc:
            if model_class is None:
                raise ModelError(
                    f"Keras could not rebuild {descriptor.get('model_class')} from {MODEL_FILE}"
                    f" ({type(exc).__name__}); pass model_class=<the class, or an instance>"
                    " to load the saved weights into it"
                ) from exc
    elif model_class is None:
        raise ModelError(
            f"this Keras model was saved as weights only ({descriptor.get('model_class')});"
            " pass model_class=<the class, or an instance> to load it"
        )
    model = model_class() if isinstance(model_class, type) else model_class
    if not model.built:
        _build(model, signature)
    model.load_weights(path)  # a .keras file holds the weights too
    return model


def _load_whole(keras: Any, path: str, model_class: Any, trust: bool) -> Any:
    custom = {model_class.__name__: model_class} if isinstance(model_class, type) else None
    try:
        return keras.models.load_model(path, custom_objects=custom, safe_mode=not trust)
    except ValueError as exc:
        if "safe_mode" not in str(exc):
            raise
        raise UntrustedModelError(
            f"{MODEL_FILE} holds Python code (e.g. a Lambda layer) that Keras' safe mode"
            " refuses to load; pass trust=True if you trust where it came from"
        ) from exc


def _is_class_or_none(model_class: Any) -> bool:
    return model_class is None or isinstance(model_class, type)


def predict(model: Any, data: Any) -> Any:
    return model.predict(data, verbose=0)


def _build(model: Any, signature: Signature | None) -> None:
    """Create a subclassed model's variables by calling it once on zeros of the signed shape."""
    if signature is None or signature.is_columns or len(signature.inputs) != 1:
        raise ModelError(
            "the model instance is not built and the signature cannot build it;"
            " call it once on data, then pass the instance as model_class"
        )
    import numpy as np

    spec = signature.inputs[0]
    shape = tuple(1 if d < 0 else d for d in spec.shape or ())
    model(np.zeros(shape, dtype=spec.dtype))


def _package_of(model: Any) -> str:
    for cls in type(model).__mro__:
        top = (cls.__module__ or "").split(".", 1)[0]
        if cls.__name__ == "Model" and top in _PACKAGES:
            return top
    return "keras"


def _keras_module(package: str) -> Any:
    if package == "tensorflow":
        return importlib.import_module("tensorflow").keras
    return importlib.import_module(package)
