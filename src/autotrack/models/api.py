"""save_model / log_model / load_model: one model directory format for every framework.

A model directory holds the model in its framework's native format, `model.json` (what it is,
with which versions, and the sha256 of every file), `signature.json`, `input_example.json` and
`requirements.txt`. Loading checks the checksums before reading anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotrack.models import descriptor as desc
from autotrack.models import example
from autotrack.models.enforce import enforce
from autotrack.models.errors import ModelError
from autotrack.models.flavors import check_format, flavor_for, get_flavor
from autotrack.models.signature import Signature, infer_signature

if TYPE_CHECKING:
    from autotrack.tracking import RunHandle

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ModelInfo:
    """Where a saved model lives and what it is."""

    artifact_path: str
    flavor: str
    run_id: str | None
    uri: str
    signature: Signature | None = None
    serialization_format: str | None = None


def save_model(
    model: Any,
    path: PathLike,
    *,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    serialization_format: str | None = None,
    extra_files: Iterable[PathLike] | None = None,
    metadata: Mapping[str, Any] | None = None,
    X: Any = None,
    y_pred: Any = None,
    log_input_example: bool = True,
    log_signature: bool = True,
) -> ModelInfo:
    """Write `model` to a new directory `path`, dispatching on the model's type.

    Without `signature`, it is inferred from `X` (and `y_pred`), or from `input_example`; the
    input example defaults to the first rows of `X` when `log_input_example` is on.
    """
    flavor = flavor_for(model)
    fmt = check_format(flavor, serialization_format)
    model_dir = _new_dir(Path(path))
    try:
        saved = flavor.save(model, model_dir, fmt)
        signature = _signature(signature, X, y_pred, input_example) if log_signature else None
        if signature is not None:
            desc.write_json(model_dir / desc.SIGNATURE, signature.to_dict())
        example_text = _example_text(input_example, X, log_input_example)
        if example_text is not None:
            (model_dir / desc.INPUT_EXAMPLE).write_text(example_text + "\n", encoding="utf-8")
        lines = desc.requirement_lines(saved.requirements)
        (model_dir / desc.REQUIREMENTS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        _copy_extra_files(extra_files, model_dir)
        content = desc.build_descriptor(
            flavor=flavor.NAME,
            framework=saved.framework,
            framework_version=saved.framework_version,
            model_file=saved.model_file,
            serialization_format=saved.serialization_format,
            files=desc.file_entries(model_dir),
            info=saved.info,
            metadata=metadata,
        )
        desc.write_json(model_dir / desc.DESCRIPTOR, content)
    except BaseException:
        shutil.rmtree(model_dir, ignore_errors=True)
        raise
    return ModelInfo(
        artifact_path=str(model_dir),
        flavor=flavor.NAME,
        run_id=None,
        uri=str(model_dir.resolve()),
        signature=signature,
        serialization_format=saved.serialization_format,
    )


def log_model(
    model: Any,
    artifact_path: str = "model",
    *,
    run: RunHandle | None = None,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    serialization_format: str | None = None,
    X: Any = None,
    y_pred: Any = None,
    log_input_example: bool = True,
    log_signature: bool = True,
    extra_files: Iterable[PathLike] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Save `model` and record it as artifacts of `run` (default: the active run, started if
    there is none), under `artifact_path`. Load it back with `load_model(info.uri)`."""
    from autotrack import tracking

    handle = run if run is not None else (tracking.active_run() or tracking.start_run())
    with tempfile.TemporaryDirectory(prefix="autotrack-model-") as tmp:
        saved = save_model(
            model,
            Path(tmp) / "model",
            signature=signature,
            input_example=input_example,
            serialization_format=serialization_format,
            extra_files=extra_files,
            metadata=metadata,
            X=X,
            y_pred=y_pred,
            log_input_example=log_input_example,
            log_signature=log_signature,
        )
        handle.log_artifacts(Path(tmp) / "model", artifact_path)
    return ModelInfo(
        artifact_path=artifact_path,
        flavor=saved.flavor,
        run_id=handle.run_id,
        uri=f"runs:/{handle.run_id}/{artifact_path}",
        signature=saved.signature,
        serialization_format=saved.serialization_format,
    )


def load_model(
    uri: PathLike,
    *,
    as_predictor: bool = False,
    trust: bool = False,
    model_class: Any = None,
    dst_path: PathLike | None = None,
) -> Any:
    """The native model saved at `uri` (`runs:/<run_id>/<path>` or a directory), or with
    `as_predictor=True` a `Predictor` whose `predict` checks input against the signature.

    `trust=True` allows pickle and types not recorded at save time; `model_class` (a class or
    an instance) rebuilds a PyTorch module, a weights-only Keras model or an XGBoost wrapper.
    `dst_path` copies the model directory there first and loads the copy.
    """
    model_dir = resolve_uri(uri)
    if dst_path is not None:
        target = Path(dst_path) / model_dir.name
        shutil.copytree(model_dir, target)
        model_dir = target
    content = desc.read_descriptor(model_dir)
    desc.verify_files(model_dir, content)
    flavor = get_flavor(str(content["flavor"]))
    signature = read_signature(model_dir)
    model = flavor.load(
        model_dir, content, trust=trust, model_class=model_class, signature=signature
    )
    if as_predictor:
        return Predictor(model, flavor.NAME, signature, model_dir, content)
    return model


class Predictor:
    """One `predict(data)` for every framework, checking `data` against the signature."""

    def __init__(
        self,
        model: Any,
        flavor: str,
        signature: Signature | None,
        model_dir: Path,
        descriptor: Mapping[str, Any],
    ) -> None:
        self.model = model
        self.flavor = flavor
        self.signature = signature
        self.model_dir = model_dir
        self.metadata: dict[str, Any] = dict(descriptor.get("metadata") or {})
        self._predict = get_flavor(flavor).predict

    def __repr__(self) -> str:
        return f"Predictor(flavor={self.flavor!r}, model={type(self.model).__name__})"

    def predict(self, data: Any) -> Any:
        """Validate (missing column, dtype, shape: SignatureError), convert, predict."""
        if self.signature is not None:
            data = enforce(self.signature, data)
        return self._predict(self.model, data)

    @property
    def input_example(self) -> Any:
        """The saved input example (DataFrame, ndarray...), or None."""
        path = self.model_dir / desc.INPUT_EXAMPLE
        if not path.is_file():
            return None
        return example.decode(json.loads(path.read_text(encoding="utf-8")))


def resolve_uri(uri: PathLike) -> Path:
    """Local directory of `runs:/<run_id>/<path>` (no path: the run's artifact root),
    `file://...` or a plain path."""
    text = os.fspath(uri)
    if text.startswith("runs:/"):
        run_id, _, relative = text[len("runs:/") :].strip("/").partition("/")
        if not run_id:
            raise ModelError(f"{text!r} is not of the form runs:/<run_id>/<artifact path>")
        from autotrack import tracking

        return Path(tracking.artifact_path(run_id, relative))
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text)


def read_signature(model_dir: Path) -> Signature | None:
    path = model_dir / desc.SIGNATURE
    if not path.is_file():
        return None
    return Signature.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _signature(
    given: Signature | Mapping[str, Any] | None, X: Any, y_pred: Any, input_example: Any
) -> Signature | None:
    """The given signature, or one inferred from X (else the input example); inference
    problems cost the signature, never the saved model."""
    if isinstance(given, Signature):
        return given
    if given is not None:
        return Signature.from_dict(given)
    source = X if X is not None else input_example
    if source is None:
        return None
    try:
        return infer_signature(source, y_pred)
    except Exception as exc:
        warnings.warn(f"could not infer the model signature: {exc}", UserWarning, stacklevel=3)
        return None


def _example_text(input_example: Any, X: Any, enabled: bool) -> str | None:
    source = input_example if input_example is not None else (X if enabled else None)
    if source is None:
        return None
    try:
        return example.example_json(source)
    except Exception as exc:
        warnings.warn(f"could not save the input example: {exc}", UserWarning, stacklevel=3)
        return None


def _new_dir(path: Path) -> Path:
    """A saved model is never overwritten or mixed with other files."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ModelError(f"{str(path)!r} already exists and is not empty; choose a new path")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _copy_extra_files(extra_files: Iterable[PathLike] | None, model_dir: Path) -> None:
    if not extra_files:
        return
    target = model_dir / "extra_files"
    target.mkdir()
    for item in extra_files:
        source = Path(item)
        if source.is_dir():
            shutil.copytree(source, target / source.name)
        else:
            shutil.copy2(source, target / source.name)
