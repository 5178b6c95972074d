"""Input example: the first few rows of the data, as plain JSON, bounded in size.

A few rows show a reader what the model takes, and can be fed straight back to
`Predictor.predict`. Rows are halved until the JSON fits the byte budget; if a single row does
not fit (huge images, long texts) no example is written rather than a big one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from autotrack.models.signature import dtype_name, type_is

MAX_ROWS = 5
MAX_BYTES = 64 * 1024


def example_json(data: Any, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> str | None:
    """JSON text for the first rows of `data` (at most `max_rows`), or None if over budget."""
    rows = max_rows
    while rows >= 1:
        text = json.dumps(encode(data, rows), default=str, allow_nan=False)
        if len(text.encode("utf-8")) <= max_bytes:
            return text
        rows //= 2
    return None


def encode(data: Any, rows: int) -> dict[str, Any]:
    """A JSON-ready dict holding the first `rows` rows of `data`."""
    if type_is(data, "pandas", "DataFrame"):
        head = data.head(rows)
        split = json.loads(head.to_json(orient="split", index=False, date_format="iso"))
        dtypes = {str(c): dtype_name(t) for c, t in zip(head.columns, head.dtypes, strict=True)}
        return {"type": "dataframe", "columns": split["columns"], "data": split["data"],
                "dtypes": dtypes}  # fmt: skip
    if isinstance(data, Mapping):
        return {"type": "dict", "data": {str(k): encode(v, rows) for k, v in data.items()}}
    if isinstance(data, (list, tuple)) and data and all(hasattr(v, "shape") for v in data):
        return {"type": "list", "data": [encode(v, rows) for v in data]}
    return _encode_array(data, rows)


def decode(payload: Mapping[str, Any]) -> Any:
    """The example back as a DataFrame, ndarray, dict or list of arrays."""
    kind = payload["type"]
    if kind == "dataframe":
        import pandas as pd

        frame = pd.DataFrame(payload["data"], columns=payload["columns"])
        for column, dtype in payload.get("dtypes", {}).items():
            with contextlib.suppress(TypeError, ValueError):  # else keep what JSON gave
                frame[column] = frame[column].astype(dtype)
        return frame
    if kind == "dict":
        return {k: decode(v) for k, v in payload["data"].items()}
    if kind == "list":
        return [decode(v) for v in payload["data"]]
    import numpy as np

    try:
        return np.asarray(payload["data"], dtype=payload["dtype"])
    except TypeError:  # a dtype numpy lacks (e.g. torch's bfloat16)
        return np.asarray(payload["data"])


def _encode_array(data: Any, rows: int) -> dict[str, Any]:
    import numpy as np

    from autotrack.models.enforce import _as_array

    head = data[:rows] if hasattr(data, "__getitem__") and hasattr(data, "shape") else data
    if type_is(head, "scipy", "spmatrix", "sparray"):
        head = head.toarray()
    array = _as_array(head)
    if array.ndim == 0:
        array = array.reshape(1)
    array = array[:rows]
    dtype = dtype_name(array.dtype)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():  # JSON has no NaN or Infinity: write null
            array = array.astype(object)
            array[~finite] = None
        values = array.tolist()
    elif array.dtype.kind in "Mm":
        values = array.astype(str).tolist()
    else:
        values = array.tolist()
    return {"type": "ndarray", "dtype": dtype, "data": values}
