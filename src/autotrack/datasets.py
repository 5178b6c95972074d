"""Dataset fingerprints: shape, dtypes, column names and a content hash over *all* of X and y,
so two runs on the same data are recognised and different data never collide.

The hash reads raw buffers (numpy, pandas numeric columns, the three arrays of a CSR matrix)
with BLAKE2b, so sparse data is never densified and nothing is converted to Python lists;
only object/string columns go through a per-element encoding. Logging happens on autotrack's
background worker, off the user's training thread.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autotrack.tracking import RunHandle

DIGEST_SIZE = 16  # 128-bit digests: collisions are out of reach for any number of runs
MAX_COLUMNS_RECORDED = 1000
_CHUNK_ROWS = 65536


def fingerprint(X: Any, y: Any = None) -> dict[str, Any]:
    """Describe and hash `X` (and `y`); `digest` identifies the pair."""
    features = _describe(X)
    result: dict[str, Any] = {"features": features}
    combined = hashlib.blake2b(digest_size=DIGEST_SIZE)
    combined.update(features["digest"].encode())
    if y is not None:
        targets = _describe(y)
        result["targets"] = targets
        combined.update(b"|y|" + targets["digest"].encode())
    result["digest"] = combined.hexdigest()
    result["shape"] = features["shape"]
    return result


def _describe(data: Any) -> dict[str, Any]:
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
    kind = _kind(data)
    hasher.update(kind.encode())
    info: dict[str, Any] = {"format": kind}
    if kind == "pandas.DataFrame":
        columns = [str(c) for c in data.columns]
        info["shape"] = list(data.shape)
        info["columns"] = columns[:MAX_COLUMNS_RECORDED]
        info["dtypes"] = [str(t) for t in data.dtypes][:MAX_COLUMNS_RECORDED]
        for name, (_, column) in zip(columns, data.items(), strict=True):
            hasher.update(b"\x00col\x00" + name.encode("utf-8", "surrogatepass"))
            _hash_series(hasher, column)
    elif kind == "pandas.Series":
        info["shape"] = list(data.shape)
        info["dtypes"] = [str(data.dtype)]
        if data.name is not None:
            info["columns"] = [str(data.name)]
        _hash_series(hasher, data)
    elif kind.startswith("scipy.sparse"):
        info["shape"] = list(data.shape)
        info["dtypes"] = [str(data.dtype)]
        info["nnz"] = int(data.nnz)
        _hash_sparse(hasher, data)
    else:
        import numpy as np

        array = data if isinstance(data, np.ndarray) else np.asarray(data)
        info["shape"] = list(array.shape)
        info["dtypes"] = [str(array.dtype)]
        _hash_array(hasher, array)
    info["digest"] = hasher.hexdigest()
    return info


def _kind(data: Any) -> str:
    module = type(data).__module__ or ""
    if module.startswith("pandas"):
        name = type(data).__name__
        if name in ("DataFrame", "Series"):
            return f"pandas.{name}"
    if module.startswith("scipy.sparse"):
        return f"scipy.sparse.{getattr(data, 'format', 'unknown')}"
    if module == "numpy":
        return "numpy"
    return "array-like"


def _hash_array(hasher: Any, array: Any) -> None:
    """dtype, shape and bytes; object arrays by a typed per-element encoding."""
    import numpy as np

    hasher.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.hasobject:
        flat = array.ravel(order="C")
        for start in range(0, len(flat), _CHUNK_ROWS):
            chunk = flat[start : start + _CHUNK_ROWS]
            hasher.update("\x1f".join(_typed_repr(v) for v in chunk).encode("utf-8", "replace"))
        return
    contiguous = np.ascontiguousarray(array)
    hasher.update(contiguous.reshape(-1).view(np.uint8).data)


def _typed_repr(value: Any) -> str:
    """`1`, `1.0`, `'1'` and `True` must hash differently."""
    return f"{type(value).__name__}:{value!r}"


def _hash_series(hasher: Any, column: Any) -> None:
    import numpy as np

    dtype = column.dtype
    hasher.update(str(dtype).encode())
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        _hash_array(hasher, column.to_numpy(copy=False))
        return
    if str(dtype) == "category":
        _hash_array(hasher, np.asarray(column.cat.codes))
        _hash_array(hasher, np.asarray(column.cat.categories, dtype=object))
        return
    # Extension and object dtypes: pandas' own vectorised per-row hash, then its bytes.
    import pandas as pd

    rows = pd.util.hash_pandas_object(column, index=False, categorize=False)
    hasher.update(np.ascontiguousarray(rows.to_numpy()).view(np.uint8).data)


def _hash_sparse(hasher: Any, matrix: Any) -> None:
    """Canonical CSR (sorted, summed duplicates) so equal matrices hash equal; never dense."""
    csr = matrix.tocsr()
    if not getattr(csr, "has_canonical_format", True):
        csr = csr.copy()
        csr.sum_duplicates()
    hasher.update(f"{csr.shape}".encode())
    # Index arrays are int32 or int64 depending on how the matrix was built: same data.
    _hash_array(hasher, csr.indptr.astype("<i8", copy=False))
    _hash_array(hasher, csr.indices.astype("<i8", copy=False))
    _hash_array(hasher, csr.data)


def summary_tags(context: str, fp: dict[str, Any], name: str | None = None) -> dict[str, str]:
    """Searchable tags: `dataset.<context>.digest`, `.shape`, `.name`."""
    tags = {
        f"dataset.{context}.digest": fp["digest"],
        f"dataset.{context}.shape": "x".join(str(d) for d in fp["shape"]),
    }
    if name:
        tags[f"dataset.{context}.name"] = name
    return tags


def log_dataset(
    run: RunHandle, X: Any, y: Any = None, context: str = "train", name: str | None = None
) -> None:
    """Fingerprint (X, y) on the background worker and record it on `run` as tags and
    `datasets/<context>.json`."""
    run.defer(_log_dataset, run, X, y, context, name)


def _log_dataset(run: RunHandle, X: Any, y: Any, context: str, name: str | None) -> None:
    fp = fingerprint(X, y)
    fp["context"] = context
    if name:
        fp["name"] = name
    run.set_tags(summary_tags(context, fp, name))
    run.log_dict(fp, f"datasets/{context}.json")
