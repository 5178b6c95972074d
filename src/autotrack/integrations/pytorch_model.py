"""The model of a plain loop, and writing into runs (a module, params that never clash).

`ModelFinder` answers "which module does this optimizer train?": while armed, torch's global
forward pre-hook notes the modules called at the top level (with the first rows of their
input, for the model's signature); `find` picks the one owning the optimizer's parameters and
disarms, since a global module hook takes every module call off torch's fast path (about 10%
of a small step). It is armed by the first `backward()` outside a recorded call (inference
and Lightning never arm it) and by a run whose model is not known yet, so the model is found
at the first or second optimizer step.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autotrack import engine
from autotrack.integrations import pytorch_loop as loop

MAX_CANDIDATES = 32  # top-level modules remembered while looking for the model


class ModelFinder:
    """Top-level module calls seen while armed; `find` turns them into the model."""

    def __init__(self, contain: Callable[[str, Exception], None]) -> None:
        self.contain = contain
        self.handles: list[Any] = []
        self.candidates: dict[int, tuple[weakref.ref[Any], Any]] = {}
        self.depth = 0
        self.last: weakref.ref[Any] | None = None  # the model found last time

    def arm(self) -> None:
        if self.handles:
            return
        from torch.nn.modules import module as nn_module

        self.candidates, self.depth = {}, 0
        self.handles = [
            nn_module.register_module_forward_pre_hook(self._pre),
            nn_module.register_module_forward_hook(self._post, always_call=True),
        ]

    def disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles, self.candidates, self.depth = [], {}, 0

    def _pre(self, module: Any, args: Any) -> None:
        try:
            if self.depth == 0 and len(self.candidates) < MAX_CANDIDATES:
                known = self.candidates.get(id(module))
                new = known is None or known[0]() is not module
                if new and not engine.recording() and next(module.parameters(), None) is not None:
                    example = loop.input_example(args[0]) if args else None
                    self.candidates[id(module)] = (weakref.ref(module), example)
        except Exception as exc:
            self.contain("forward", exc)
        self.depth += 1

    def _post(self, module: Any, args: Any, output: Any) -> None:
        self.depth = max(self.depth - 1, 0)

    def find(self, optimizer: Any) -> tuple[Any, Any] | None:
        """(model, input example) among the modules called so far, or the last model found
        when it owns the optimizer's parameters (a new optimizer on the same model)."""
        found = [(ref(), example) for ref, example in self.candidates.values()]
        modules = [module for module, _ in found if module is not None]
        previous = self.last() if self.last is not None else None
        model = loop.choose_model(
            modules or ([previous] if previous is not None else []), optimizer
        )
        if model is None:
            return None
        example = next((e for m, e in found if m is model), None)
        self.disarm()
        model = loop.unwrap_module(model)
        self.last = weakref.ref(model)
        return model, example


def gpu_memory(model: Any) -> dict[str, float]:
    """Peak GPU memory so far (MiB) on the model's CUDA device. The peak counter is not reset
    (the user may read it too), so this is the peak up to each epoch's end."""
    if model is None:
        return {}
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.device.type != "cuda":
        return {}
    import torch

    return {"gpu_peak_memory_mb": torch.cuda.max_memory_allocated(parameter.device) / 2**20}


def log_module(run: Any, module: Any, example: Any, config: Any, path: str = "model") -> None:
    """Save the weights now (training may go on changing them), upload in the background."""
    from autotrack.models import save_model

    wants_example = config.log_input_examples or config.log_model_signatures
    folder = Path(tempfile.mkdtemp(prefix="autotrack-torch-"))
    try:
        save_model(
            module,
            folder / "model",
            X=example if wants_example else None,
            log_input_example=config.log_input_examples,
            log_signature=config.log_model_signatures,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    run.defer(_upload, run, folder, path)


def _upload(run: Any, folder: Path, path: str) -> None:
    try:
        run.log_artifacts(folder / "model", path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def live_config() -> Any:
    """The integration's current options. The engine hands them to every patched call; torch's
    global hooks get none, so a run opening there reads them from autolog's registry."""
    registry = importlib.import_module("autotrack.autolog")  # `autotrack.autolog` is a function
    entry = registry._entries.get(loop.NAME)
    return entry.live.config if entry is not None else None


def log_new_params(run: Any, managed: bool, params: dict[str, Any]) -> None:
    """Params are write-once: in the user's own run, keep the values an earlier call logged
    (a second loop or fit with other settings must not fail)."""
    clean = loop.drop_none(params)
    if clean:
        run.log_params(clean, keep_existing=not managed)
