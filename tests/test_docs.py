"""The README's generated tables match the code (scripts/readme_tables.py renders them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_renderer():
    spec = importlib.util.spec_from_file_location(
        "readme_tables", ROOT / "scripts/readme_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_current():
    renderer = load_renderer()
    text = (ROOT / "README.md").read_text()
    assert renderer.rewrite(text) == text, "run: python scripts/readme_tables.py --write"


def test_readme_lists_every_integration_and_its_range():
    text = (ROOT / "README.md").read_text()
    renderer = load_renderer()
    for info in renderer.REGISTRY:
        assert f"`{info.supported}`" in text
        assert f"`autotrack.{info.name}`" in text


def test_noxfile_tests_the_versions_the_registry_lists():
    source = (ROOT / "noxfile.py").read_text()
    for info in load_renderer().REGISTRY:
        for version in info.tested:
            assert f'("{info.name}", "{version}")' in source, (info.name, version)
