"""`import autotrack` and `autotrack.autolog()` in a process with no framework imported."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["sklearn", "xgboost", "lightgbm", "tensorflow", "keras", "torch", "lightning",
         "matplotlib", "pandas", "numpy", "mlflow", "bottle"]  # fmt: skip

PROBE = f"""
import json, sys, warnings
warnings.simplefilter("error")
import autotrack
imported_by_import = [m for m in {HEAVY!r} if m in sys.modules]
autotrack.autolog()
autotrack.autolog(log_models=False)
autotrack.autolog(disable=True)
imported_by_autolog = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps([imported_by_import, imported_by_autolog, autotrack.active_run() is None]))
"""


def test_import_and_autolog_load_no_framework(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert json.loads(result.stdout) == [[], [], True]
    assert result.stderr == ""
    assert not (tmp_path / "autotrack-runs").exists()  # nothing recorded, nothing created


def test_the_default_store_folder_cannot_shadow_the_package():
    from autotrack.tracking import DEFAULT_STORE_FOLDER

    assert not DEFAULT_STORE_FOLDER.isidentifier()
