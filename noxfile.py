"""Test matrix: lint, core (no framework), one session per framework version, demo, bench.

    nox -t ci          the reduced matrix CI runs (oldest and newest of each framework)
    nox                the full matrix (every tested version)
    nox -s demo        the README's demo
    nox -s bench       benchmarks side by side with MLflow's autolog

Supported ranges and tested versions come from the integration registry
(src/autotrack/integrations/__init__.py); FRAMEWORK_INSTALLS says how to install each.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "core", "framework", "mlflow", "ui"]


def _registry():
    spec = importlib.util.spec_from_file_location(
        "autotrack_registry", ROOT / "src/autotrack/integrations/__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.REGISTRY


REGISTRY = {info.name: info for info in _registry()}
TORCH = "torch==2.13.0"  # the CPU build on local disk; any other torch pulls GBs of CUDA

# (integration, tested version) -> pip requirements. Traps: see shared/MATRIX.md.
FRAMEWORK_INSTALLS: dict[tuple[str, str], list[str]] = {
    ("sklearn", "1.2.2"): ["scikit-learn==1.2.2", "numpy<2", "pandas<2.2", "scipy<1.14"],
    ("sklearn", "1.9.1"): ["scikit-learn==1.9.1", "pandas"],
    ("xgboost", "1.7.6"): ["xgboost==1.7.6", "scikit-learn<1.6", "numpy<2", "pandas<2.2"],
    ("xgboost", "2.1.4"): ["xgboost-cpu==2.1.4", "scikit-learn<1.7", "pandas"],
    ("xgboost", "3.2.0"): ["xgboost-cpu==3.2.0", "scikit-learn", "pandas"],
    ("lightgbm", "3.3.5"): ["lightgbm==3.3.5", "scikit-learn<1.6", "numpy<2", "pandas<2.2"],
    ("lightgbm", "4.7.0"): ["lightgbm==4.7.0", "scikit-learn", "pandas"],
    ("tensorflow", "2.15.1"): ["tensorflow-cpu==2.15.1", "scikit-learn", "pandas"],
    ("tensorflow", "2.16.2"): ["tensorflow-cpu==2.16.2", "scikit-learn", "pandas"],
    ("tensorflow", "2.21.0"): ["tensorflow-cpu==2.21.0", "scikit-learn", "pandas"],
    ("pytorch", "2.13.0"): [TORCH, "lightning==2.6.6", "numpy", "scikit-learn"],
}
# Sessions CI runs: the oldest and newest tested version of each framework.
CI_VERSIONS = {
    (info.name, version)
    for info in REGISTRY.values()
    for version in {info.tested[0], info.tested[-1]}
}
TEST_FILES = {
    "sklearn": ["tests/integrations/test_sklearn*.py", "tests/test_models.py"],
    "xgboost": ["tests/integrations/test_xgboost*.py", "tests/test_models.py"],
    "lightgbm": ["tests/integrations/test_lightgbm*.py", "tests/test_models.py"],
    "tensorflow": ["tests/integrations/test_keras*.py", "tests/integrations/test_models_keras.py"],
    "pytorch": [
        "tests/integrations/test_pytorch*.py",
        "tests/integrations/test_lightning*.py",
        "tests/integrations/test_models_torch.py",
    ],
}
BASE = ["pytest", "pytest-timeout", "matplotlib", "skops", "safetensors"]


def install(session: nox.Session, *requirements: str) -> None:
    """pip install, refusing an accidental CUDA download (nvidia-* wheels are GBs)."""
    session.install(*requirements)
    listed = session.run("python", "-m", "pip", "list", silent=True) or ""
    if "nvidia-" in listed:
        session.error("an nvidia-* (CUDA) package was installed: pin torch==2.13.0")


def pytest(session: nox.Session, *paths: str) -> None:
    files = sorted({f for pattern in paths for f in glob.glob(pattern, root_dir=ROOT)})
    if not files:
        session.skip(f"no test files match {paths}")
    session.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, *session.posargs,
        env={"AUTOTRACK_STRICT": "1", "MPLBACKEND": "Agg"},
    )  # fmt: skip


@nox.session(tags=["ci"])
def lint(session: nox.Session) -> None:
    install(session, "ruff", "mypy", "wrapt", "packaging", "rich")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples")
    session.run("mypy")


@nox.session(tags=["ci"])
@nox.parametrize("wrapt", ["1.14.1", "2.1.2"], ids=["wrapt1", "wrapt2"])
def core(session: nox.Session, wrapt: str) -> None:
    """No framework installed: autotrack imports fast and `autolog()` does nothing harmful."""
    install(session, "-e", ".", f"wrapt=={wrapt}", "pytest", "pytest-timeout")
    pytest(session, "tests/test_*.py")


def _framework_params() -> list:
    params = []
    for (name, version), _ in FRAMEWORK_INSTALLS.items():
        tags = ["ci"] if (name, version) in CI_VERSIONS else []
        params.append(nox.param(name, version, id=f"{name}-{version}", tags=tags))
    return params


@nox.session
@nox.parametrize(("name", "version"), _framework_params())
def framework(session: nox.Session, name: str, version: str) -> None:
    install(session, *FRAMEWORK_INSTALLS[(name, version)], *BASE)
    install(session, "-e", ".", "--no-deps")
    install(session, "wrapt", "packaging", "rich")
    pytest(session, *TEST_FILES[name], "tests/integrations/test_contract.py")


@nox.session(tags=["ci"])
def mlflow(session: nox.Session) -> None:
    """The MLflow backend against a real `mlflow server` process."""
    install(session, "-e", ".[mlflow]", "mlflow", "scikit-learn", "xgboost-cpu", *BASE, "pandas")
    pytest(session, "tests/test_mlflow*.py")


@nox.session(tags=["ci"])
def ui(session: nox.Session) -> None:
    """The web UI: JSON API tests and browser tests in headless Chromium."""
    if not shutil.which("chromium") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
    install(session, "-e", ".", "playwright", "scikit-learn", "pandas", *BASE)
    pytest(session, "tests/test_ui*.py")


@nox.session
def demo(session: nox.Session) -> None:
    """Train real models in every framework with `autotrack.autolog()`, then list the runs."""
    install(
        session, "scikit-learn", "xgboost-cpu", "lightgbm", "tensorflow-cpu", TORCH,
        "lightning==2.6.6", "matplotlib", "pandas", "skops", "safetensors",
    )  # fmt: skip
    install(session, "-e", ".")
    store = str(ROOT / "autotrack-runs")
    for script in sorted(glob.glob("examples/[0-9]*.py", root_dir=ROOT)):
        session.run("python", script, env={"AUTOTRACK_TRACKING_URI": store})
    session.run("autotrack", "--store", store, "runs", "--limit", "40")
    session.log(f"Runs are in {store}. Browse them: autotrack --store {store} ui")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with MLflow's autolog (latest MLflow)."""
    install(
        session, "mlflow", "tensorboard", "scikit-learn", "xgboost-cpu", "lightgbm",
        "tensorflow-cpu", TORCH, "lightning==2.6.6", "matplotlib", "pandas", "skops", "safetensors",
    )  # fmt: skip
    install(session, "-e", ".")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
