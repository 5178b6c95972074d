"""Python objects without a framework-native format: skops first, pickle as the fallback.

Every type a skops file references is stored in model.json at save time; at load, types skops
does not trust by default must be among them. Pickle (or cloudpickle, for lambdas and local
functions) can run arbitrary code when loaded, so loading it always needs `trust=True`.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

from autotrack.models.errors import ModelError, PickleWarning, UntrustedModelError
from autotrack.models.flavors import resolvable

FORMATS = ("skops", "pickle", "cloudpickle")


def requirements(serialization_format: str) -> list[tuple[str, ...]]:
    """The distribution a format needs at load time (plain pickle needs none)."""
    return [] if serialization_format == "pickle" else [(serialization_format,)]


def dump(obj: Any, model_dir: Path, stem: str, serialization_format: str | None) -> dict[str, Any]:
    """Write `obj` as `<stem>.skops` (default) or `<stem>.pkl`; return what model.json needs:
    `file`, `serialization_format` and, for skops, `trusted_types`."""
    if serialization_format in (None, "skops"):
        try:
            data, trusted = _skops_bytes(obj)
        except Exception as exc:
            if serialization_format == "skops":
                raise ModelError(f"skops cannot save {_name(obj)}: {exc}") from exc
            reason = str(exc) or type(exc).__name__
        else:
            (model_dir / f"{stem}.skops").write_bytes(data)
            return {"file": f"{stem}.skops", "serialization_format": "skops",
                    "trusted_types": trusted}  # fmt: skip
        warnings.warn(
            f"skops cannot save {_name(obj)} ({reason}); saved it with pickle instead."
            " Loading it will need load_model(..., trust=True).",
            PickleWarning,
            stacklevel=4,
        )
    else:
        warnings.warn(
            f"{_name(obj)} is saved with {serialization_format}, which runs code when loaded;"
            " loading it will need load_model(..., trust=True).",
            PickleWarning,
            stacklevel=4,
        )
    data, used = _pickle_bytes(obj, serialization_format == "cloudpickle")
    (model_dir / f"{stem}.pkl").write_bytes(data)
    return {"file": f"{stem}.pkl", "serialization_format": used}


def load(
    path: Path, serialization_format: str, trusted_types: list[str] | None, *, trust: bool
) -> Any:
    """Read an object written by `dump`, trusting only what the saver recorded."""
    if serialization_format == "skops":
        import skops.io as sio

        found = sio.get_untrusted_types(file=path)
        unknown = sorted(set(found) - set(trusted_types or ()))
        if unknown and not trust:
            raise UntrustedModelError(
                f"{path.name} needs types that were not recorded as trusted when the model was"
                f" saved: {', '.join(unknown)}. Refusing to load it; pass trust=True only if you"
                " trust where this file came from."
            )
        return sio.load(path, trusted=found)
    if serialization_format in ("pickle", "cloudpickle"):
        if not trust:
            raise UntrustedModelError(
                f"{path.name} was saved with {serialization_format}, which can run arbitrary code"
                " when loaded. Pass trust=True to load it if you trust where it came from."
            )
        return pickle.loads(path.read_bytes())
    raise ModelError(f"unknown serialization format {serialization_format!r} for {path.name}")


def _skops_bytes(obj: Any) -> tuple[bytes, list[str]]:
    """skops bytes and every type they reference (recorded as trusted); fails if a type the
    file needs could not be found again at load time (a lambda, a lock...)."""
    import skops.io as sio

    data = sio.dumps(obj)
    types = schema_types(data)
    if not all(resolvable(name) for name in types):
        # Slow path, rare: ask skops which of them it would have to import by name.
        lost = [n for n in sio.get_untrusted_types(data=data) if not resolvable(n)]
        if lost:
            raise ModelError(f"it holds objects skops cannot load back: {', '.join(lost)}")
    return data, types


def schema_types(data: bytes) -> list[str]:
    """Every 'module.Class' a skops file references: a superset of what
    `skops.io.get_untrusted_types` reports (skops names each node by these two keys), read
    from its schema.json in a few ms, where skops' own audit rebuilds the object tree."""
    found: set[str] = set()

    def note(node: dict[str, Any]) -> dict[str, Any]:
        cls, module = node.get("__class__"), node.get("__module__")
        if isinstance(cls, str) and isinstance(module, str):
            found.add(f"{module}.{cls}")
        return node

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        json.loads(archive.read("schema.json"), object_hook=note)
    return sorted(found)


def _pickle_bytes(obj: Any, prefer_cloudpickle: bool) -> tuple[bytes, str]:
    """Plain pickle when it works (no extra dependency at load), else cloudpickle."""
    if not prefer_cloudpickle:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
        except Exception as exc:
            first_error: Exception = exc
    try:
        import cloudpickle
    except ImportError as exc:
        if prefer_cloudpickle:
            raise ModelError("serialization_format='cloudpickle' needs cloudpickle") from exc
        raise ModelError(f"neither skops nor pickle can save {_name(obj)}") from first_error
    try:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "cloudpickle"
    except Exception as exc:
        raise ModelError(f"neither skops nor pickle can save {_name(obj)}: {exc}") from exc


def _name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
