"""Readable names for runs created without one (both backends use them)."""

from __future__ import annotations

_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "gentle", "keen", "lucid",
    "merry", "nimble", "quiet", "rapid", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "crane", "dolphin", "falcon", "fox", "gecko", "heron", "ibis", "koala", "lynx",
    "marten", "newt", "otter", "panda", "quail", "raven", "seal", "tern", "vole", "wren",
)  # fmt: skip


def generated_run_name(run_id: str) -> str:
    """A readable, stable name derived from the run id, e.g. `swift-otter-417`."""
    number = int(run_id[:8], 16)
    return (
        f"{_ADJECTIVES[number % len(_ADJECTIVES)]}-{_NOUNS[(number // 20) % len(_NOUNS)]}"
        f"-{number % 1000}"
    )
