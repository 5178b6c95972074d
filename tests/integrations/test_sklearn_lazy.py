"""sklearn autologging is lazy: enabling it patches only the sklearn modules already imported
and hooks the others, so `autolog()` never imports all of scikit-learn (issue 3: under 200 ms).

Each test runs in a fresh interpreter, since which modules are imported is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

HEAVY = ("sklearn.ensemble", "sklearn.cluster", "sklearn.svm", "sklearn.neighbors")

FIT_KMEANS = """
from sklearn.datasets import load_iris
X, _ = load_iris(return_X_y=True)
labels = KMeans(n_clusters=3, n_init=1, random_state=0).fit_predict(X).tolist()
"""


def run_script(folder: Path, source: str) -> dict:
    env = {**os.environ, "AUTOTRACK_TRACKING_URI": str(folder / "store"), "AUTOTRACK_STRICT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def plain_labels(folder: Path) -> list[int]:
    source = "from sklearn.cluster import KMeans\n" + FIT_KMEANS + "print(json.dumps(labels))"
    return run_script(folder, "import json\n" + source)


def test_autolog_after_import_sklearn_imports_no_estimator_module(tmp_path):
    out = run_script(
        tmp_path,
        f"""
        import json, sys
        import sklearn
        import autotrack
        from autotrack import patching
        autotrack.sklearn.autolog()
        imported = [m for m in {HEAVY!r} if m in sys.modules]
        from sklearn.cluster import KMeans  # first imported now: patched by the hook
        {FIT_KMEANS.strip().replace(chr(10), chr(10) + " " * 8)}
        patched = patching.is_autotrack_proxy(vars(KMeans)["fit"])
        runs = autotrack.search_runs()
        autotrack.sklearn.autolog(disable=True)
        print(json.dumps({{
            "imported": imported,
            "patched": patched,
            "runs": [r.tags.get("estimator_class") for r in runs],
            "labels": labels,
            "reverted": not patching.is_autotrack_proxy(vars(KMeans)["fit"]),
        }}))
        """,
    )
    assert out["imported"] == []
    assert out["patched"] is True
    assert out["runs"] == ["sklearn.cluster._kmeans.KMeans"]
    assert out["labels"] == plain_labels(tmp_path)
    assert out["reverted"] is True


def test_autolog_before_import_patches_each_module_when_imported(tmp_path):
    out = run_script(
        tmp_path,
        f"""
        import json, sys
        import autotrack
        autotrack.sklearn.autolog()
        import sklearn
        imported = [m for m in {HEAVY!r} if m in sys.modules]
        from sklearn.cluster import KMeans
        {FIT_KMEANS.strip().replace(chr(10), chr(10) + " " * 8)}
        print(json.dumps({{
            "imported": imported,
            "runs": [r.tags.get("estimator_class") for r in autotrack.search_runs()],
            "labels": labels,
        }}))
        """,
    )
    assert out["imported"] == []
    assert out["runs"] == ["sklearn.cluster._kmeans.KMeans"]
    assert out["labels"] == plain_labels(tmp_path)


def test_every_listed_estimator_is_known_once_its_module_is_imported(tmp_path):
    """Importing each public sklearn module after autolog() is enough: every class
    `all_estimators()` lists is then patched, with nothing patched twice."""
    out = run_script(
        tmp_path,
        """
        import importlib, json
        import autotrack
        autotrack.sklearn.autolog()
        import sklearn
        from autotrack.integrations.sklearn import INTEGRATION, public_children
        for name in public_children(sklearn):
            importlib.import_module(name)
        from sklearn.utils import all_estimators
        points = [r.target for r in autotrack.status() if r.integration == "sklearn" and r.target]
        print(json.dumps({
            "unknown": [c.__name__ for _, c in all_estimators() if not INTEGRATION.is_known(c)],
            "points": len(points),
            "distinct": len(set(points)),
            "failed": [r.target for r in autotrack.status() if r.state == "failed"],
        }))
        """,
    )
    assert out["unknown"] == []
    assert out["failed"] == []
    assert out["points"] == out["distinct"] > 300
