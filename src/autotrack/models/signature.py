"""What a model takes and returns: column names and dtypes for DataFrames, dtype and shape
(batch dimension free, -1) for arrays and tensors.

Inference only reads `.dtype`/`.shape`/`.columns` of the data it is given, so it is cheap and
never imports a framework: a torch tensor or a DataFrame is recognised by its type's module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANY_SIZE = -1


@dataclass(frozen=True)
class Spec:
    """One input or output: a named column (shape None), or a tensor (named or not)."""

    dtype: str
    name: str | None = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype}
        if self.name is not None:
            out["name"] = self.name
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spec:
        shape = data.get("shape")
        return cls(
            dtype=str(data["dtype"]),
            name=None if data.get("name") is None else str(data["name"]),
            shape=None if shape is None else tuple(int(d) for d in shape),
        )


@dataclass(frozen=True)
class Signature:
    """The model's inputs (checked by `Predictor.predict`) and outputs (informative)."""

    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...] | None = None

    @property
    def is_columns(self) -> bool:
        """True when the inputs are DataFrame columns rather than tensors."""
        return bool(self.inputs) and all(s.shape is None for s in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": None if self.outputs is None else [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        outputs = data.get("outputs")
        return cls(
            inputs=tuple(Spec.from_dict(s) for s in data["inputs"]),
            outputs=None if outputs is None else tuple(Spec.from_dict(s) for s in outputs),
        )


def infer_signature(X: Any, y_pred: Any = None) -> Signature:
    """Describe `X` (what fit saw) and, if given, `y_pred` (what the model returned)."""
    return Signature(
        inputs=schema_of(X),
        outputs=None if y_pred is None else schema_of(y_pred),
    )


def type_is(obj: Any, package: str, *names: str) -> bool:
    """Whether `obj` is an instance of a class called one of `names` from `package`
    (checked along the MRO by name, so the package is never imported here)."""
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        if cls.__name__ in names and (module == package or module.startswith(package + ".")):
            return True
    return False


def schema_of(data: Any) -> tuple[Spec, ...]:
    """Specs for one piece of data: columns of a DataFrame, or tensors."""
    if type_is(data, "pandas", "DataFrame"):
        return tuple(
            Spec(dtype=dtype_name(dtype), name=str(col))
            for col, dtype in zip(data.columns, data.dtypes, strict=True)
        )
    if isinstance(data, Mapping):
        return tuple(_tensor_spec(value, name=str(key)) for key, value in data.items())
    if isinstance(data, (list, tuple)) and data and all(hasattr(v, "shape") for v in data):
        return tuple(_tensor_spec(value) for value in data)
    name = getattr(data, "name", None) if type_is(data, "pandas", "Series") else None
    return (_tensor_spec(data, name=None if name is None else str(name)),)


def _tensor_spec(value: Any, name: str | None = None) -> Spec:
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        value = plain_array(value)
    dims = tuple(int(d) if d is not None else ANY_SIZE for d in tuple(value.shape))
    shape = (ANY_SIZE, *dims[1:]) if dims else ()
    return Spec(dtype=dtype_name(value.dtype), name=name, shape=shape)


def plain_array(value: Any) -> Any:
    """`np.asarray(value)`, refusing opaque objects (a DMatrix, a generator) that numpy would
    wrap as a 0-d object array: a signature or example made from that would be nonsense."""
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 0 and array.dtype == object:
        raise TypeError(f"cannot describe a {type(value).__name__} as an array")
    return array


def dtype_name(dtype: Any) -> str:
    """A framework-neutral dtype name: 'float32' for numpy, torch and TF alike; 'str' for
    numpy unicode; pandas extension dtypes keep their own names ('category', 'Int64')."""
    kind = getattr(dtype, "kind", None)
    if kind == "U":
        return "str"
    if kind == "S":
        return "bytes"
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch.") :]
    name = getattr(dtype, "name", None)
    return name if isinstance(name, str) else text


def format_shape(shape: tuple[int, ...]) -> str:
    """(-1, 4) reads better than [-1, 4] in an error message."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
