"""autolog(): options, live config without stacking, exact disable, post-import hooks,
version checks, the global call, status(), and import-order independence (subprocesses)."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing.pool
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

import autotrack
from autotrack import integrations
from autotrack.integrations import IntegrationInfo
from autotrack.safety import AutotrackWarning
from engine_toy import (
    ToyIntegration,
    autolog_module,
    clean_state,
    forget_modules,
    make_toy,
    runs,
    toy_context,
    write_framework,
)

TESTS = Path(__file__).parent


@pytest.fixture
def toy(tmp_path):
    yield from toy_context(tmp_path / "frameworks")


@pytest.fixture(autouse=True)
def _clean():
    yield from clean_state()


@contextmanager
def autotrack_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    caught[:] = [w for w in caught if issubclass(w.category, AutotrackWarning)]


def patch_points(toy, fw):
    return {
        (fw.models.Base, "fit"),
        (fw.models.Regressor, "fit"),
        (fw.models.Pipeline, "fit"),
        (fw.models.Search, "fit"),
        (fw.metrics, "score"),
    }


# -- options --------------------------------------------------------------------------------------
def test_unknown_options_fail_listing_the_valid_ones(toy):
    with pytest.raises(TypeError) as raised:
        toy.autolog(log_model=False)
    message = str(raised.value)
    assert "unknown option(s) 'log_model'" in message
    assert "log_models" in message and "log_epochs" in message  # common and own options
    with pytest.raises(TypeError, match="must be True or False"):
        toy.autolog(exclusive="yes")
    with pytest.raises(TypeError, match="extra_tags"):
        toy.autolog(extra_tags=["a"])
    with pytest.raises(TypeError, match=r"autotrack.autolog\(\) got unknown option"):
        autotrack.autolog(log_epochs=True)  # per-integration options are not global ones
    assert "log_epochs (default True)" in toy.autolog.__doc__


# -- live config, no stacking, exact disable ------------------------------------------------------
def test_calling_autolog_again_updates_config_and_never_stacks(toy):
    fw = toy.import_framework()
    original = vars(fw.models.Base)["fit"]
    toy.autolog(extra_tags={"round": "1"})
    toy.autolog(extra_tags={"round": "2"})
    toy.autolog(extra_tags={"round": "3"}, log_epochs=False)

    assert vars(fw.models.Base)["fit"].__wrapped__ is original  # one layer
    fw.Model().fit([1, 2], epochs=2, callbacks=[])
    run = runs()[0]
    assert len(runs()) == 1 and run.tags["round"] == "3"
    assert autotrack.get_metric_history(run.run_id, "loss") == []  # log_epochs=False is live


def test_concurrent_autolog_calls_patch_once(toy):
    fw = toy.import_framework()
    original = vars(fw.models.Base)["fit"]
    threads = [threading.Thread(target=toy.autolog) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert vars(fw.models.Base)["fit"].__wrapped__ is original


def test_disable_restores_every_original_object_and_behaviour(toy):
    fw = toy.import_framework()
    points = patch_points(toy, fw)
    originals = {(owner, name): vars(owner)[name] for owner, name in points}
    engine_originals = {
        "submit": vars(concurrent.futures.ThreadPoolExecutor)["submit"],
        "start": vars(threading.Thread)["start"],
    }
    reference = pickle.dumps(fw.Regressor().fit([1, 2, 4]))

    toy.autolog()
    assert all(vars(owner)[name] is not originals[owner, name] for owner, name in points)
    assert "apply_async" in vars(multiprocessing.pool.ThreadPool)
    toy.autolog(disable=True)

    for (owner, name), original in originals.items():
        assert vars(owner)[name] is original, (owner, name)
    assert "fit" not in vars(fw.models.Model)  # inherited stays inherited
    assert vars(concurrent.futures.ThreadPoolExecutor)["submit"] is engine_originals["submit"]
    assert vars(threading.Thread)["start"] is engine_originals["start"]
    assert "apply_async" not in vars(multiprocessing.pool.ThreadPool)
    assert pickle.dumps(fw.Regressor().fit([1, 2, 4])) == reference
    assert toy.integration.extras == ["on", "off"]
    fw.Model().fit([1])
    assert runs() == []


# -- post-import hooks ----------------------------------------------------------------------------
def test_framework_imported_after_autolog_is_patched_on_import(toy):
    toy.autolog()
    toy.autolog()
    assert toy.name not in sys.modules  # autolog never imports the framework
    assert status_of(toy.name) == ("pending", f"patched when {toy.name} is imported")

    fw = toy.import_framework()

    assert toy.integration.targets_calls == 1
    fw.Model().fit([1, 3])
    assert [r.run_name for r in runs()] == ["Model-fit"]
    assert status_of(toy.name)[0] == "patched"


def test_hook_reads_the_config_when_it_fires(toy):
    toy.autolog()
    toy.autolog(disable=True)
    fw = toy.import_framework()
    assert toy.integration.targets_calls == 0
    assert type(vars(fw.models.Base)["fit"]).__name__ != "PatchWrapper"


def test_hook_failure_never_breaks_the_users_import(toy, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    toy.fail("targets")
    toy.autolog()
    with autotrack_warnings() as caught:
        fw = toy.import_framework()
    assert fw.Model().fit([2]).coef_ == 2
    assert len(caught) == 1 and "targets failed" in str(caught[0].message)
    state, reason = status_of(toy.name)
    assert state == "failed" and "injected fault in targets" in reason


# -- versions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["0.9.1", "2.0.0", "1.5.0rc1", "not-a-version"])
def test_unsupported_versions_warn_once_and_can_be_skipped(tmp_path, version):
    made = make_toy(tmp_path / "frameworks", version=version, supported=">=1.0,<2")
    try:
        fw = made.import_framework()
        with autotrack_warnings() as caught:
            made.autolog()
            made.autolog()
        assert len(caught) == 1 and version in str(caught[0].message)
        assert type(vars(fw.models.Base)["fit"]).__name__ == "PatchWrapper"

        made.autolog(disable=True)
        made.autolog(disable_for_unsupported_versions=True)
        assert type(vars(fw.models.Base)["fit"]).__name__ != "PatchWrapper"
        state, reason = status_of(made.name)
        assert state == "skipped" and ">=1.0,<2" in reason
    finally:
        autolog_module._reset_for_tests()
        forget_modules(made.name)


def test_supported_version_gives_no_warning(toy):
    toy.import_framework()
    with autotrack_warnings() as caught:
        toy.autolog()
    assert caught == []
    assert status_of(toy.name) == ("patched", f"{toy.name}-dist 1.4.0")


# -- missing frameworks and the global call -------------------------------------------------------
def test_missing_framework_warns_only_when_asked_for_explicitly():
    missing = IntegrationInfo("ghost", "ghost", ("ghost_framework_xyz",), "ghost-ml", ">=1", ())
    explicit = autolog_module.make_autolog(ToyIntegration("ghost"), missing)
    with autotrack_warnings() as caught:
        explicit()
        explicit()
    assert len(caught) == 1 and "ghost-ml is not installed" in str(caught[0].message)
    assert status_of("ghost") == ("skipped", "ghost-ml is not installed")


INTEGRATION_MODULE = """
from autotrack.autolog import make_autolog
from autotrack.integrations import IntegrationInfo
from engine_toy import ToyIntegration

INFO = IntegrationInfo("{fw}", "{module}", ("{fw}",), "{fw}-dist", ">=1", ())
autolog = make_autolog(ToyIntegration("{fw}"), INFO)
"""


@pytest.fixture
def registered_toy(tmp_path, monkeypatch):
    """Registry rows like the built-ins: a toy framework (installed, not imported), a framework
    that is not installed, and an integration module that fails to import."""
    frameworks = tmp_path / "frameworks"
    write_framework(frameworks, "toyreg_fw")
    for fw, module in [("toyreg_fw", "toyreg_integration"), ("ghost_fw_xyz", "ghost_integration")]:
        (frameworks / f"{module}.py").write_text(INTEGRATION_MODULE.format(fw=fw, module=module))
    monkeypatch.syspath_prepend(str(frameworks))
    import ghost_integration
    import toyreg_integration

    broken = IntegrationInfo("broken", "broken_pkg_xyz.integration", ("json",), "b", ">=1", ())
    rows = (toyreg_integration.INFO, ghost_integration.INFO, broken)
    monkeypatch.setattr(integrations, "REGISTRY", rows)
    yield toyreg_integration
    autolog_module._reset_for_tests()
    for name in ("toyreg_fw", "toyreg_integration", "ghost_integration"):
        forget_modules(name)


def test_global_autolog_enables_every_row_without_importing_frameworks(registered_toy, monkeypatch):
    import autotrack.autolog  # the module shadows the function name; both must work

    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    with autotrack_warnings() as caught:
        autotrack.autolog(extra_tags={"who": "global"})
    assert "toyreg_fw" not in sys.modules and "ghost_fw_xyz" not in sys.modules
    assert status_of("toyreg_fw") == ("pending", "patched when toyreg_fw is imported")
    assert status_of("ghost_fw_xyz") == ("skipped", "ghost_fw_xyz-dist is not installed")
    assert status_of("broken")[0] == "failed"
    # silent about the missing framework; one warning for autotrack's own broken module
    assert len(caught) == 1 and "broken_pkg_xyz" in str(caught[0].message)

    import toyreg_fw

    toyreg_fw.Model().fit([1])
    assert runs()[0].tags["who"] == "global"


def test_explicit_config_is_never_overwritten_by_a_later_global_call(registered_toy, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")  # the registry's "broken" row
    import toyreg_fw

    registered_toy.autolog(extra_tags={"who": "explicit"})
    with autotrack_warnings():
        autotrack.autolog(extra_tags={"who": "global"})
        autotrack.autolog(disable=True)
    toyreg_fw.Model().fit([1])
    assert [r.tags["who"] for r in runs()] == ["explicit"]


# -- status ---------------------------------------------------------------------------------------
def status_of(name):
    row = next(r for r in autotrack.status() if r.integration == name and not r.target)
    return row.state, row.reason


def test_status_lists_every_patch_point(toy):
    fw = toy.import_framework()
    assert status_of(toy.name) == ("off", "autolog() not called")
    toy.autolog()
    rows = [r for r in autotrack.status() if r.integration == toy.name and r.target]
    assert {(r.target, r.state) for r in rows} == {
        (f"{toy.name}.models.Base.fit", "patched"),
        (f"{toy.name}.models.Regressor.fit", "patched"),
        (f"{toy.name}.models.Pipeline.fit", "patched"),
        (f"{toy.name}.models.Search.fit", "patched"),
        (f"{toy.name}.metrics.score", "patched"),
        (f"{toy.name}.models.score", "patched"),  # `from .metrics import score`, rebound
    }
    assert any(r.integration == "engine" for r in autotrack.status())
    text = autolog_module.format_status()
    assert f"{toy.name:<12} patched  {toy.name}-dist 1.4.0; patch points: 6 patched" in text
    assert "Base.fit" not in text and "Base.fit" in autolog_module.format_status(verbose=True)
    toy.autolog(disable=True)
    assert status_of(toy.name) == ("off", "disabled by autolog(disable=True)")
    assert fw.models.score is fw.metrics.score


# -- import order, in fresh interpreters ----------------------------------------------------------
SCRIPT_BODY = """
with autotrack.start_run(run_name="script") as run:
    Model().fit([1, 2, 3])
    score([1, 2], [1, 2])
Model().fit([4])
rows = [
    (r.run_name, r.params, r.metrics, r.tags.get("autotrack.integration"))
    for r in autotrack.search_runs()
]
print(json.dumps(sorted(rows, key=lambda row: row[0])))
"""

FRAMEWORK_FIRST = """
import json
import {fw}
from {fw}.metrics import score
from {fw} import Model
import autotrack
from toyorder_integration import autolog
autolog()
"""

AUTOLOG_FIRST = """
import json
import autotrack
from toyorder_integration import autolog
autolog()
import {fw}
from {fw}.metrics import score
from {fw} import Model
"""


def run_script(folder: Path, source: str) -> list:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "AUTOTRACK_TRACKING_URI": str(folder / f"store-{abs(hash(source))}"),
        "AUTOTRACK_STRICT": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_order_does_not_change_what_is_recorded(tmp_path):
    fw = "toyorder_fw"
    write_framework(tmp_path, fw)
    (tmp_path / "toyorder_integration.py").write_text(
        textwrap.dedent(f"""
        from autotrack.autolog import make_autolog
        from autotrack.integrations import IntegrationInfo
        from engine_toy import ToyIntegration

        INFO = IntegrationInfo("{fw}", "toyorder_integration", ("{fw}",), "toyorder", ">=1", ())
        autolog = make_autolog(ToyIntegration("{fw}"), INFO)
        """)
    )
    first = run_script(tmp_path, FRAMEWORK_FIRST.format(fw=fw) + SCRIPT_BODY)
    second = run_script(tmp_path, AUTOLOG_FIRST.format(fw=fw) + SCRIPT_BODY)
    assert first == second
    assert first == [
        ["Model-fit", {"epochs": "1", "model": "Model"}, {"coef": 4.0, "loss": 1.0}, fw],
        ["script", {"epochs": "1", "model": "Model"}, {"coef": 2.0, "loss": 1.0, "score": 1.0}, fw],
    ]


SKLEARN_PROBE = '''
"""A test integration over real scikit-learn: LogisticRegression.fit and accuracy_score."""
from autotrack.autolog import make_autolog
from autotrack.integrations import IntegrationInfo
from autotrack.integrations.base import Hooks, Integration, PatchTarget


class Fit(Hooks):
    def after(self, call, result):
        call.run.log_param("C", result.C)


class Metric(Hooks):
    opens_run = False

    def after(self, call, result):
        if call.run is not None:
            call.run.log_metric(call.target.attribute, result)


class Probe(Integration):
    name = "sklearn_probe"

    def targets(self, module):
        import sklearn.linear_model
        import sklearn.metrics._classification as classification

        return [
            PatchTarget(sklearn.linear_model.LogisticRegression, "fit", Fit()),
            PatchTarget(classification, "accuracy_score", Metric()),
        ]


INFO = IntegrationInfo("sklearn_probe", "sklearn_probe", ("sklearn",), "scikit-learn", ">=1", ())
autolog = make_autolog(Probe(), INFO)
'''

SKLEARN_BODY = """
X, y = load_iris(return_X_y=True)
with autotrack.start_run(run_name="script"):
    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    accuracy_score(y, model.predict(X))
rows = [(r.run_name, r.params, sorted(r.metrics)) for r in autotrack.search_runs()]
print(json.dumps(rows))
"""

SKLEARN_FIRST = """
import json
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
import autotrack
from sklearn_probe import autolog
autolog()
"""

SKLEARN_AUTOLOG_FIRST = """
import json
import autotrack
from sklearn_probe import autolog
autolog()
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
"""


def test_import_order_with_real_sklearn_functions_imported_by_name(tmp_path):
    pytest.importorskip("sklearn")
    (tmp_path / "sklearn_probe.py").write_text(SKLEARN_PROBE)
    first = run_script(tmp_path, SKLEARN_FIRST + SKLEARN_BODY)
    second = run_script(tmp_path, SKLEARN_AUTOLOG_FIRST + SKLEARN_BODY)
    assert first == second == [["script", {"C": "0.5"}, ["accuracy_score"]]]
