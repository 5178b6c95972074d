"""PyTorch modules (and plain state dicts) saved as a safetensors state dict.

Only tensors are stored: loading never runs code. `load_model` returns the state dict, or the
module when `model_class=` (a class instantiated with no arguments, or an instance) is given.
`model_repr.txt` shows the architecture to a reader.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autotrack.models.errors import ModelError
from autotrack.models.flavors import Saved, class_path, model_path
from autotrack.models.signature import type_is

NAME = "pytorch"
FORMATS = ("safetensors",)
MODEL_FILE = "model.safetensors"
REPR_FILE = "model_repr.txt"


def matches(model: Any) -> bool:
    if type_is(model, "torch", "Module"):
        return True
    return (
        isinstance(model, Mapping)
        and bool(model)
        and all(type_is(v, "torch", "Tensor") for v in model.values())
    )


def save(model: Any, model_dir: Path, serialization_format: str | None) -> Saved:
    import safetensors.torch
    import torch

    is_module = isinstance(model, torch.nn.Module)
    state = model.state_dict() if is_module else dict(model)
    tensors, skipped = plain_tensors(state)
    if skipped:
        warnings.warn(
            f"state dict entries that are not tensors were not saved: {', '.join(skipped)}",
            UserWarning,
            stacklevel=4,
        )
    safetensors.torch.save_file(tensors, str(model_dir / MODEL_FILE), metadata={"format": "pt"})
    if is_module:
        (model_dir / REPR_FILE).write_text(repr(model) + "\n", encoding="utf-8")
    return Saved(
        model_file=MODEL_FILE,
        serialization_format="safetensors",
        framework="torch",
        framework_version=str(torch.__version__),
        requirements=[("torch",), ("safetensors",), ("numpy",)],
        info={"model_class": class_path(type(model)) if is_module else None},
    )


def plain_tensors(state: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Detached, contiguous CPU tensors that safetensors accepts: tensors sharing memory (tied
    weights) are copied apart; non-tensor entries are returned by name to warn about."""
    import torch

    tensors: dict[str, Any] = {}
    skipped: list[str] = []
    seen: set[int] = set()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            skipped.append(str(key))
            continue
        tensor = value.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else 0
        if pointer and pointer in seen:
            tensor = tensor.clone()
        elif pointer:
            seen.add(pointer)
        tensors[str(key)] = tensor
    return tensors, skipped


def load(model_dir: Path, descriptor: dict[str, Any], *, model_class: Any = None, **_: Any) -> Any:
    import safetensors.torch

    state = safetensors.torch.load_file(str(model_path(model_dir, descriptor)))
    if model_class is None:
        return state
    module = model_class() if isinstance(model_class, type) else model_class
    module.load_state_dict(state)
    return module


def predict(model: Any, data: Any) -> Any:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ModelError(
            "a PyTorch model loads as a state dict; pass model_class=<the module class, or an"
            " instance> to load_model to predict with it"
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(data, Mapping):
                output = model(**{k: _tensor(v, device) for k, v in data.items()})
            elif isinstance(data, list):
                output = model(*[_tensor(v, device) for v in data])
            else:
                output = model(_tensor(data, device))
    finally:
        model.train(was_training)
    return _numpy(output)


def _tensor(value: Any, device: Any) -> Any:
    import torch

    return torch.as_tensor(value).to(device)


def _numpy(output: Any) -> Any:
    if isinstance(output, (tuple, list)):
        return type(output)(_numpy(o) for o in output)
    if isinstance(output, Mapping):
        return {k: _numpy(v) for k, v in output.items()}
    if hasattr(output, "detach"):
        return output.detach().cpu().numpy()
    return output
