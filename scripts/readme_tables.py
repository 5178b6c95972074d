"""Render the README's generated tables from the code, so the docs cannot drift:

- supported versions: from the integration registry and the noxfile's tested versions;
- what is recorded: from each integration module's `RECORDED` declaration.

    python scripts/readme_tables.py          # print the tables
    python scripts/readme_tables.py --write  # rewrite them in README.md between the markers

tests/test_docs.py fails when README.md differs from what this renders.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "src"))

from autotrack.integrations import REGISTRY  # noqa: E402

KINDS = ("params", "metrics", "tags", "artifacts")


def render_versions() -> str:
    lines = [
        "| integration | `autolog()` | framework | supported | tested in the matrix |",
        "|---|---|---|---|---|",
    ]
    for info in REGISTRY:
        names = ", ".join(f"`autotrack.{n}`" for n in (info.name, *info.aliases))
        tested = ", ".join(info.tested)
        lines.append(
            f"| {info.name} | {names} | {info.distribution} | `{info.supported}` | {tested} |"
        )
    return "\n".join(lines)


def render_recorded() -> str:
    parts = []
    for info in REGISTRY:
        module = importlib.import_module(f"autotrack.integrations.{info.module}")
        recorded = getattr(module, "RECORDED", None)
        if not recorded:
            continue
        parts.append(f"**{info.name}** (`autotrack.{info.name}.autolog()`)\n")
        parts.append("| kind | name | what |\n|---|---|---|")
        for kind in KINDS:
            for name, what in recorded.get(kind, {}).items():
                parts.append(f"| {kind} | `{name}` | {what} |")
        parts.append("")
    return "\n".join(parts).rstrip()


TABLES = {"versions": render_versions, "recorded": render_recorded}


def rewrite(text: str) -> str:
    for name, render in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(rewrite(README.read_text()))
    else:
        for render in TABLES.values():
            print(render(), end="\n\n")
