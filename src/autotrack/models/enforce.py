"""Check prediction input against a signature and convert it to what the model was fit on.

Errors name the column or input at fault. Lossless casts (int -> float, float64 -> float32
for networks trained in float32) are applied silently; anything else is an error, because a
silently wrong dtype gives silently wrong predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autotrack.models.errors import SignatureError
from autotrack.models.signature import (
    ANY_SIZE,
    Signature,
    Spec,
    dtype_name,
    format_shape,
    plain_array,
    type_is,
)

_STRING_LIKE = frozenset({"object", "str", "string", "bytes", "category"})
_NULLABLE = {"Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64"}
_NULLABLE.update({"UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64"})
_NULLABLE.update({"Float32": "float32", "Float64": "float64", "boolean": "bool"})


def enforce(signature: Signature, data: Any) -> Any:
    """`data` checked against `signature.inputs`, converted (DataFrame or ndarray)."""
    specs = signature.inputs
    if signature.is_columns:
        return _enforce_columns(specs, data)
    if len(specs) == 1 and specs[0].name is None:
        return _enforce_tensor(specs[0], data, "input")
    if all(s.name is not None for s in specs):
        if not isinstance(data, Mapping):
            names = ", ".join(repr(s.name) for s in specs)
            raise SignatureError(f"the model expects a dict of inputs named {names}")
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise SignatureError(
                f"input is missing {_names(missing, 'input')} that the model expects"
            )
        return {s.name: _enforce_tensor(s, data[s.name], f"input {s.name!r}") for s in specs}
    if not isinstance(data, (list, tuple)) or len(data) != len(specs):
        raise SignatureError(f"the model expects a list of {len(specs)} inputs")
    pairs = enumerate(zip(specs, data, strict=True))
    return [_enforce_tensor(spec, item, f"input {i}") for i, (spec, item) in pairs]


def cast_rule(actual: str, expected: str) -> str | None:
    """'same' (use as is), 'cast' (convert losslessly enough) or None (refuse)."""
    actual, expected = _NULLABLE.get(actual, actual), _NULLABLE.get(expected, expected)
    if actual == expected:
        return "same"
    if actual in _STRING_LIKE and expected in _STRING_LIKE:
        return "same"
    if actual.startswith("datetime64") and expected.startswith("datetime64"):
        return "same"
    import numpy as np

    try:
        a, e = np.dtype(actual), np.dtype(expected)
    except TypeError:
        return None
    if a.kind not in "biuf" or e.kind not in "biuf":
        return None
    if np.can_cast(a, e, "safe") or (a.kind in "biu" and e.kind == "f"):
        return "cast"
    if a.kind == "f" and e.kind == "f":
        return "cast"
    return None


def check_shape(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Same rank, and every fixed dimension equal (-1 matches any size)."""
    return len(actual) == len(expected) and all(
        e == ANY_SIZE or a == e for a, e in zip(actual, expected, strict=True)
    )


def _enforce_columns(specs: tuple[Spec, ...], data: Any) -> Any:
    frame = _as_frame(specs, data)
    by_name = {str(col): col for col in frame.columns}
    missing = [s.name for s in specs if s.name not in by_name]
    if missing:
        expected = ", ".join(repr(s.name) for s in specs)
        raise SignatureError(
            f"input is missing {_names(missing, 'column')} that the model expects"
            f" (expected columns: {expected})"
        )
    frame = frame[[by_name[str(s.name)] for s in specs]]
    casts = {}
    for spec, col in zip(specs, frame.columns, strict=True):
        actual = dtype_name(frame[col].dtype)
        rule = cast_rule(actual, spec.dtype)
        if rule is None:
            raise SignatureError(
                f"column {spec.name!r} has dtype {actual} but the model expects {spec.dtype}"
            )
        if rule == "cast":
            casts[col] = _NULLABLE.get(spec.dtype, spec.dtype)
    return frame.astype(casts) if casts else frame


def _as_frame(specs: tuple[Spec, ...], data: Any) -> Any:
    import pandas as pd

    if type_is(data, "pandas", "DataFrame"):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame({k: _as_array(v) for k, v in data.items()})
    array = _as_array(data)
    if getattr(array, "ndim", None) == 2 and array.shape[1] == len(specs):
        return pd.DataFrame(array, columns=[s.name for s in specs])
    expected = ", ".join(repr(s.name) for s in specs)
    shape = format_shape(tuple(getattr(array, "shape", ())))
    raise SignatureError(
        f"the model expects a DataFrame with columns {expected};"
        f" got {type(data).__name__} of shape {shape}"
    )


def _enforce_tensor(spec: Spec, data: Any, what: str) -> Any:
    array = _as_array(data)
    shape = tuple(int(d) for d in array.shape)
    if spec.shape is not None and not check_shape(shape, spec.shape):
        raise SignatureError(
            f"{what} has shape {format_shape(shape)} but the model expects"
            f" {format_shape(spec.shape)} (-1: any size)"
        )
    actual = dtype_name(array.dtype)
    rule = cast_rule(actual, spec.dtype)
    if rule is None:
        raise SignatureError(f"{what} has dtype {actual} but the model expects {spec.dtype}")
    return array.astype(spec.dtype) if rule == "cast" else array


def _as_array(data: Any) -> Any:
    """A numpy array (or scipy sparse matrix, kept sparse) for any array-like."""
    import numpy as np

    if isinstance(data, np.ndarray) or type_is(data, "scipy", "spmatrix", "sparray"):
        return data
    if type_is(data, "pandas", "DataFrame", "Series"):
        return data.to_numpy()
    if type_is(data, "torch", "Tensor"):
        return data.detach().cpu().numpy()
    if hasattr(data, "numpy") and hasattr(data, "dtype"):  # TF eager tensors, JAX arrays
        return np.asarray(data.numpy())
    return plain_array(data)


def _names(names: list[Any], noun: str) -> str:
    quoted = ", ".join(repr(n) for n in names)
    return f"{noun} {quoted}" if len(names) == 1 else f"{noun}s {quoted}"
