"""autotrack model directories as MLflow models.

`add_mlflow_flavor(model_dir)` writes an `MLmodel` (and `python_env.yaml`) next to the files
autotrack saved, pointing at them: nothing is serialized twice. scikit-learn models (skops or
pickle) get MLflow's `sklearn` flavor, XGBoost models its `xgboost` flavor, LightGBM Boosters
its `lightgbm` flavor, each with `python_function` through MLflow's own loader, so MLflow's
rules apply unchanged (e.g. MLflow >= 3.x asks for MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true
before it deserializes any scikit-learn model). Keras and PyTorch models get
`python_function` through `autotrack.store.mlflow_pyfunc`, which loads them with autotrack.
"""

from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DESCRIPTOR = "model.json"
MLMODEL = "MLmodel"
PYTHON_ENV = "python_env.yaml"


def model_dirs(root: Path) -> list[Path]:
    """Every autotrack model directory at or below `root`."""
    if root.is_file():
        return []
    return sorted(path.parent for path in root.rglob(DESCRIPTOR) if _is_model(path))


def _is_model(descriptor_path: Path) -> bool:
    try:
        content = json.loads(descriptor_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and "flavor" in content and "model_file" in content


def mlflow_files(model_dir: Path) -> dict[str, str]:
    """The MLmodel and python_env.yaml text for an autotrack model directory ({} if it is not
    one). Written by hand from MLflow's documented format: importing mlflow takes seconds."""
    try:
        descriptor = json.loads((model_dir / DESCRIPTOR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {MLMODEL: _yaml(mlmodel(descriptor)), PYTHON_ENV: _python_env(model_dir)}


def add_mlflow_flavor(model_dir: Path) -> bool:
    """Write MLmodel + python_env.yaml into `model_dir`; False if it is not a model."""
    files = mlflow_files(model_dir)
    for name, text in files.items():
        (model_dir / name).write_text(text, encoding="utf-8")
    return bool(files)


def mlmodel(descriptor: dict[str, Any]) -> dict[str, Any]:
    """MLmodel content for a model.json (pure)."""
    flavor = str(descriptor["flavor"])
    model_file = str(descriptor["model_file"])
    fmt = descriptor.get("serialization_format")
    version = str(descriptor.get("framework_version", ""))
    model_class = str(descriptor.get("model_class", ""))
    flavors: dict[str, Any] = {}
    if fmt in ("skops", "pickle", "cloudpickle"):
        flavors["python_function"] = _pyfunc("mlflow.sklearn", model_path=model_file)
        flavors["sklearn"] = {
            "pickled_model": model_file,
            "sklearn_version": version if flavor == "sklearn" else _installed("scikit-learn"),
            "serialization_format": fmt,
            "code": None,
            "skops_trusted_types": descriptor.get("trusted_types"),
        }
    elif flavor == "xgboost":
        flavors["python_function"] = _pyfunc("mlflow.xgboost", data=model_file)
        flavors["xgboost"] = {
            "xgb_version": version,
            "data": model_file,
            "model_class": model_class or "xgboost.core.Booster",
            "model_format": fmt or "ubj",
            "code": None,
        }
    elif flavor == "lightgbm" and model_class.endswith(".Booster"):
        flavors["python_function"] = _pyfunc("mlflow.lightgbm", data=model_file)
        flavors["lightgbm"] = {
            "lgb_version": version,
            "data": model_file,
            "model_class": model_class,
            "code": None,
        }
    else:
        flavors["python_function"] = _pyfunc("autotrack.store.mlflow_pyfunc")
    return {
        "flavors": flavors,
        "mlflow_version": _installed("mlflow-skinny") or _installed("mlflow") or None,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {"autotrack_flavor": flavor, "autotrack_model_file": model_file},
    }


def _pyfunc(loader_module: str, **paths: str) -> dict[str, Any]:
    return {
        "loader_module": loader_module,
        **paths,
        "env": {"virtualenv": PYTHON_ENV},
        "python_version": platform.python_version(),
    }


def _yaml(content: dict[str, Any]) -> str:
    try:
        import yaml  # type: ignore[import-untyped]  # always there with MLflow
    except ImportError:
        return json.dumps(content, indent=2)  # JSON is YAML too
    return str(yaml.safe_dump(content, default_flow_style=False, sort_keys=False))


def _installed(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _python_env(model_dir: Path) -> str:
    """MLflow's python_env.yaml, reusing the requirements.txt autotrack wrote."""
    deps = "  - -r requirements.txt\n" if (model_dir / "requirements.txt").is_file() else ""
    return (
        f"python: {platform.python_version()}\n"
        "build_dependencies:\n  - pip\n  - setuptools\n  - wheel\n"
        f"dependencies:\n{deps}"
    )
