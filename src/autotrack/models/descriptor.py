"""`model.json`, `requirements.txt` and file checksums of a model directory.

Versions come from package metadata (`importlib.metadata`), cached per process: no
subprocess, no scan of the environment, so saving stays within a few milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from autotrack.models.errors import ModelError, ModelIntegrityError

DESCRIPTOR = "model.json"
SIGNATURE = "signature.json"
INPUT_EXAMPLE = "input_example.json"
REQUIREMENTS = "requirements.txt"
FORMAT_VERSION = 1


@functools.cache
def dist_version(name: str) -> str | None:
    """Installed version of distribution `name`, without a local label ('2.3.0+cpu' -> '2.3.0',
    which pip can install from an index), or None when it is not installed."""
    try:
        version = importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    return version.split("+", 1)[0]


def requirement_lines(requirements: Iterable[tuple[str, ...]]) -> list[str]:
    """`name==version` for each requirement; each is a tuple of alternative distribution
    names (`('xgboost', 'xgboost-cpu')`), the first installed one wins."""
    lines: list[str] = []
    for alternatives in requirements:
        for name in alternatives:
            version = dist_version(name)
            if version is not None:
                line = f"{name}=={version}"
                if line not in lines:
                    lines.append(line)
                break
    return lines


def autotrack_version() -> str:
    from_metadata = dist_version("autotrack")
    if from_metadata is not None:
        return from_metadata
    import autotrack

    return str(getattr(autotrack, "__version__", "unknown"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(model_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in the directory (POSIX relative paths)."""
    entries = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(model_dir).as_posix()
        if relative != DESCRIPTOR:
            entries[relative] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return entries


def build_descriptor(
    *,
    flavor: str,
    framework: str,
    framework_version: str,
    model_file: str,
    serialization_format: str,
    files: Mapping[str, Mapping[str, Any]],
    info: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The content of model.json (pure: no I/O)."""
    return {
        "format_version": FORMAT_VERSION,
        "flavor": flavor,
        "framework": framework,
        "framework_version": framework_version,
        "autotrack_version": autotrack_version(),
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "model_file": model_file,
        "serialization_format": serialization_format,
        **dict(info),
        "files": dict(files),
        "metadata": dict(metadata or {}),
    }


def write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")


def read_descriptor(model_dir: Path) -> dict[str, Any]:
    """model.json, or an error saying why this is not a readable model directory."""
    path = model_dir / DESCRIPTOR
    if not model_dir.is_dir():
        raise ModelError(f"no model directory at {str(model_dir)!r}")
    if not path.is_file():
        raise ModelError(
            f"{str(model_dir)!r} is not an autotrack model directory: {DESCRIPTOR} is missing"
        )
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON ({exc}): it is damaged") from exc
    if not isinstance(descriptor, dict) or "flavor" not in descriptor:
        raise ModelIntegrityError(f"{path} does not describe a model (no 'flavor')")
    if int(descriptor.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(
            f"{path} was written by a newer autotrack ({descriptor.get('autotrack_version')});"
            " upgrade autotrack to load it"
        )
    return descriptor


def verify_files(model_dir: Path, descriptor: Mapping[str, Any]) -> None:
    """Every file recorded at save time is present with the same size and sha256."""
    files = descriptor.get("files")
    if not isinstance(files, Mapping) or descriptor.get("model_file") not in files:
        raise ModelIntegrityError(
            f"{DESCRIPTOR} in {model_dir} lists no checksum for the model file; refusing to load it"
        )
    for relative, entry in files.items():
        path = model_dir / relative
        if not path.is_file():
            raise ModelIntegrityError(f"{relative} is missing from the model at {model_dir}")
        size = path.stat().st_size
        if size != entry.get("size", size):
            raise ModelIntegrityError(
                f"{relative} has {size} bytes but {entry['size']} were saved: the file is"
                " truncated or was changed; refusing to load it"
            )
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise ModelIntegrityError(
                f"{relative} does not match the sha256 recorded in {DESCRIPTOR}"
                f" (expected {entry.get('sha256')}, found {actual}): the file was changed"
                " after saving; refusing to load it"
            )
