"""How an artifact is shown: images inline, CSV as a table, JSON and text as text, and model
folders (those holding a `model.json`) with their signature and the line that loads them."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}
MAX_TEXT_BYTES = 256 * 1024
MAX_TABLE_ROWS = 500
MODEL_DESCRIPTOR = "model.json"


def preview(file: Path, relative: str) -> dict[str, Any]:
    """What the page needs to show one artifact file (never more than a bounded amount)."""
    size = file.stat().st_size
    suffix = file.suffix.lower()
    out: dict[str, Any] = {"path": relative, "size": size}
    if suffix in IMAGE_TYPES:
        return {**out, "kind": "image"}
    with file.open("rb") as handle:
        head = handle.read(MAX_TEXT_BYTES + 1)
    truncated = len(head) > MAX_TEXT_BYTES
    head = head[:MAX_TEXT_BYTES]
    text = _as_text(head)
    if text is None:
        return {**out, "kind": "binary"}
    if suffix in TABLE_DELIMITERS:
        rows = _table(text, TABLE_DELIMITERS[suffix])
        more = truncated or len(rows) > MAX_TABLE_ROWS
        return {**out, "kind": "table", "rows": rows[:MAX_TABLE_ROWS], "truncated": more}
    if suffix == ".json" and not truncated:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        return {**out, "kind": "json", "text": text, "truncated": False}
    return {**out, "kind": "text", "text": text, "truncated": truncated}


def _as_text(data: bytes) -> str | None:
    """UTF-8 text, or None for binary content (a NUL byte or undecodable bytes)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut by the size limit
            return data[: exc.start].decode("utf-8")
        return None


def _table(text: str, delimiter: str) -> list[list[str]]:
    rows = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        rows.append(row)
        if len(rows) > MAX_TABLE_ROWS:
            break
    return rows


def find_models(root: Path, max_depth: int = 4) -> list[dict[str, Any]]:
    """Model folders under a run's artifact root, with descriptor and signature when readable."""
    found: list[dict[str, Any]] = []
    base = root.resolve()
    for folder, dirs, files in os.walk(base):
        depth = len(Path(folder).relative_to(base).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < max_depth else []
        if MODEL_DESCRIPTOR in files:
            relative = Path(folder).relative_to(base).as_posix()
            found.append(_model_info(Path(folder), "" if relative == "." else relative))
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _model_info(folder: Path, relative: str) -> dict[str, Any]:
    descriptor = _read_json(folder / MODEL_DESCRIPTOR)
    return {
        "path": relative,
        "descriptor": descriptor if isinstance(descriptor, dict) else None,
        "signature": _read_json(folder / "signature.json"),
        "has_input_example": (folder / "input_example.json").is_file(),
    }


def load_snippet(run_id: str, model_path: str) -> str:
    """The Python a user pastes to get the model back."""
    uri = f"runs:/{run_id}/{model_path}" if model_path else f"runs:/{run_id}"
    return f"import autotrack\n\nmodel = autotrack.load_model({json.dumps(uri)})"
