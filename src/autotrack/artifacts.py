"""Artifact paths: relative, normalised, and never outside the run's artifact folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from autotrack.entities import FileInfo


def clean_relative(path: str) -> str:
    """Validate a user-given artifact path and return it in POSIX form ('' for the root)."""
    if path is None:
        return ""
    text = str(path).replace("\\", "/")
    if any(ord(c) < 32 for c in text):
        raise ValueError(f"artifact path {path!r} contains control characters")
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("/"):
        raise ValueError(f"artifact path {path!r} must be relative to the run's artifact folder")
    if ".." in pure.parts:
        raise ValueError(f"artifact path {path!r} must not contain '..'")
    parts = [p for p in pure.parts if p not in ("", ".")]
    return "/".join(parts)


def resolve(root: Path, path: str) -> Path:
    """`root / path`, refusing anything that would land outside `root` (symlinks included)."""
    relative = clean_relative(path)
    target = (root / relative).resolve() if relative else root.resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"artifact path {path!r} leaves the run's artifact folder")
    return target


def list_dir(root: Path, path: str = "") -> list[FileInfo]:
    """The entries directly under `path`, folders first, each with a path relative to root."""
    folder = resolve(root, path)
    if not folder.is_dir():
        return []
    base = root.resolve()
    entries = []
    for child in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        relative = child.resolve().relative_to(base).as_posix()
        size = None if child.is_dir() else child.stat().st_size
        entries.append(FileInfo(relative, child.is_dir(), size))
    return entries
