"""What every run records about where it ran: source, git commit, Python, platform, versions."""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import platform
import sys
from pathlib import Path

ML_PACKAGES = (
    "sklearn", "xgboost", "lightgbm", "tensorflow", "keras", "torch", "lightning",
    "pytorch_lightning", "numpy", "pandas",
)  # fmt: skip


def run_tags() -> dict[str, str]:
    """Tags for a new run; cheap (no subprocess; process-wide facts are cached)."""
    tags = dict(_process_tags())
    for name in ML_PACKAGES:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module else None
        if isinstance(version, str):
            tags[f"autotrack.versions.{name}"] = version
    return tags


@functools.lru_cache(maxsize=1)
def _process_tags() -> tuple[tuple[str, str], ...]:
    source, source_type = _source()
    tags = {
        "autotrack.source.name": source,
        "autotrack.source.type": source_type,
        "autotrack.python_version": platform.python_version(),
        "autotrack.platform": platform.platform(terse=True),
    }
    with contextlib.suppress(Exception):
        tags["autotrack.user"] = getpass.getuser()
    commit = git_commit(Path(source).parent if source_type == "SCRIPT" else Path.cwd())
    if commit:
        tags["autotrack.source.git_commit"] = commit
    return tuple(tags.items())


def _source() -> tuple[str, str]:
    main = sys.modules.get("__main__")
    if "ipykernel" in sys.modules:
        return os.environ.get("JPY_SESSION_NAME", "<notebook>"), "NOTEBOOK"
    path = getattr(main, "__file__", None)
    if not path:
        return ("<command line>" if sys.argv[:1] == ["-c"] else "<interactive>"), "LOCAL"
    return str(Path(path).resolve()), "SCRIPT"


def git_commit(start: Path) -> str | None:
    """The commit checked out in the repository containing `start`, read from .git files."""
    try:
        for folder in (start.resolve(), *start.resolve().parents):
            git = folder / ".git"
            if git.is_file():  # worktree or submodule: "gitdir: <path>"
                git = (folder / git.read_text().split(":", 1)[1].strip()).resolve()
            if git.is_dir():
                return _resolve_head(git)
    except (OSError, IndexError):
        return None
    return None


def _resolve_head(git: Path) -> str | None:
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    common = git
    if (git / "commondir").is_file():
        common = (git / (git / "commondir").read_text().strip()).resolve()
    for base in (git, common):
        if (base / ref).is_file():
            return (base / ref).read_text().strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    return None
