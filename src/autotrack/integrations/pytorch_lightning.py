"""Lightning (`lightning` and `pytorch_lightning`): `Trainer.fit`, then `validate`/`test`.

`fit` gets a Lightning Callback added to the trainer for the call (the user's list is left as
it was, and restored after). Before training: trainer settings, `hparams` (the model's and the
datamodule's) and the seed; at train start: optimizer and scheduler config and the
early-stopping/checkpoint settings; for every training epoch (validation included): the
callback metrics with step = epoch, read once Lightning has reduced them; every
`log_every_n_steps` steps: the step-level ones; after fit: early-stopping and checkpoint
results, the model, and the best checkpoint's weights. `validate`/`test` after a recorded
fit add their metrics to that fit's run. Only global rank 0 records. The plain-loop capture
is silent inside these calls (the engine marks them as recorded calls).
"""

from __future__ import annotations

import contextlib
import importlib
import weakref
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from autotrack import tracking
from autotrack.integrations import pytorch_loop as loop
from autotrack.integrations.base import Call, Hooks, PatchTarget
from autotrack.integrations.pytorch_lightning_values import (
    callbacks_params,
    callbacks_results,
    epoch_metrics,
    eval_metrics,
    flatten,
    fresh,
    merge_params,
    optimizers_params,
    rank_zero,
    step_metrics,
    trainer_params,
)
from autotrack.integrations.pytorch_model import log_module, log_new_params
from autotrack.integrations.pytorch_session import NAME
from autotrack.safety import safe_callback_methods


# -- the callback ----------------------------------------------------------------------------
class FitRecorder:
    """What the injected callback does during one fit (kept free of Lightning).

    An epoch's values are read when the next epoch starts (or training ends): by then Lightning
    has reduced them on every rank. Reading `callback_metrics` inside `on_train_epoch_end`
    would make rank 0 alone run the `sync_dist` reductions, out of step with the other ranks.
    """

    def __init__(self, call: Call, every: int) -> None:
        self.call = call
        self.run = call.run
        self.every = every
        self.seen: dict[str, Any] = {}
        self.epochs_logged = 0
        self.last_step_logged = -1
        self.rates: dict[str, float] = {}
        self.pending: tuple[int, dict[str, float]] | None = None  # (epoch, its learning rates)

    def train_start(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        params = optimizers_params(list(trainer.optimizers), list(trainer.lr_scheduler_configs))
        params.update(callbacks_params(list(trainer.callbacks)))
        log_new_params(self.run, self.call.managed, params)
        fresh(trainer.callback_metrics, self.seen)  # what the sanity check left is not news

    def epoch_start(self, trainer: Any) -> None:
        """Log the epoch before; note the learning rate this one trains with (epoch schedulers
        step before its end)."""
        self.flush(trainer)
        self.rates = loop.learning_rates(trainer.optimizers[0]) if trainer.optimizers else {}

    def epoch_end(self, trainer: Any) -> None:
        if not trainer.sanity_checking:
            self.pending = (trainer.current_epoch, self.rates)

    def flush(self, trainer: Any) -> None:
        """The pending epoch's callback metrics (new values only), with step = epoch."""
        if self.pending is None or not trainer.is_global_zero:
            return
        epoch, rates = self.pending
        self.pending = None
        metrics = trainer.callback_metrics
        values = epoch_metrics(fresh(metrics, self.seen), metrics)
        if "lr" not in values:
            values.update(rates)
        if values:
            self.run.log_metrics(values, step=epoch)  # type: ignore[union-attr]
        self.epochs_logged += 1

    def batch_end(self, trainer: Any) -> None:
        step = trainer.global_step
        if not self.every or step % self.every or step == self.last_step_logged:
            return
        if not trainer.is_global_zero:
            return
        self.last_step_logged = step
        metrics = trainer.callback_metrics  # step values: nothing is reduced to read them
        values = step_metrics(fresh(metrics, self.seen), metrics)
        if values:
            self.run.log_metrics(values, step=step)  # type: ignore[union-attr]


_callback_classes: dict[type, type] = {}


def callback_class(base: type) -> type:
    """The Callback autotrack adds, subclassing the trainer's own Lightning package's."""
    cls = _callback_classes.get(base)
    if cls is not None:
        return cls

    class AutotrackCallback(base):  # type: ignore[valid-type,misc]
        def __init__(self, recorder: FitRecorder | None) -> None:
            super().__init__()
            self.recorder = recorder
            self.call = recorder.call if recorder is not None else None

        def __getstate__(self) -> dict[str, Any]:
            return {}  # spawned workers get an inert copy: the run lives in the parent

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.recorder = self.call = None

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if self.recorder is not None:
                self.recorder.train_start(trainer)

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if self.recorder is not None:
                self.recorder.epoch_start(trainer)

        def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
            if self.recorder is not None and self.recorder.every:
                self.recorder.batch_end(trainer)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.recorder is not None:
                self.recorder.epoch_end(trainer)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            if self.recorder is not None:
                self.recorder.flush(trainer)

    safe_callback_methods(AutotrackCallback, integration=NAME)
    _callback_classes[base] = AutotrackCallback
    return AutotrackCallback


def _callback_base(trainer: Any) -> type:
    package = type(trainer).__module__.split(".trainer")[0]  # lightning.pytorch | pytorch_lightning
    return importlib.import_module(f"{package}.callbacks").Callback


# -- hooks ----------------------------------------------------------------------------------
#: trainer or model -> (run id, epochs trained) of its latest recorded fit.
_fitted: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()


class FitHooks(Hooks):
    """`Trainer.fit`: settings before, metrics from the callback, results and model after."""

    def records(self, call: Call) -> bool:
        return rank_zero()

    def before(self, call: Call) -> None:
        trainer, model = call.instance, call.argument("model")
        params = trainer_params(trainer)
        hparams = flatten(getattr(model, "hparams", None) or {})
        datamodule = call.argument("datamodule")
        hparams.update(flatten(getattr(datamodule, "hparams", None) or {}))
        params = merge_params(params, hparams)
        params["seed"] = loop.user_seed()
        log_new_params(call.run, call.managed, params)
        every = int(getattr(call.config, "log_every_n_steps", 0) or 0)
        recorder = FitRecorder(call, every)
        callback = callback_class(_callback_base(trainer))(recorder)
        original = trainer.callbacks
        trainer.callbacks = [*original, callback]
        call.state.update(recorder=recorder, callback=callback, callbacks=original)

    def after(self, call: Call, result: Any) -> None:
        _restore_callbacks(call)
        trainer, model = call.instance, call.argument("model")
        run = call.run
        assert run is not None
        recorder: FitRecorder = call.state["recorder"]
        recorder.flush(trainer)  # if training ended without `on_train_end`
        last_epoch = max(trainer.current_epoch - 1, 0)
        if not recorder.epochs_logged:  # the epochs ran in spawned workers: the final values
            values = epoch_metrics(trainer.callback_metrics, trainer.callback_metrics)
            if values:
                run.log_metrics(values, step=last_epoch)
        metrics, tags = callbacks_results(list(trainer.callbacks))
        if metrics:
            run.log_metrics(metrics, step=last_epoch)
        if tags:
            run.set_tags(tags)
        _fitted[trainer] = (run.run_id, trainer.current_epoch)
        if model is not None:
            log_new_params(run, call.managed, loop.model_params(model))  # lazy modules are built
            _fitted[model] = (run.run_id, trainer.current_epoch)
            if call.config.log_models:
                example = loop.input_example(getattr(model, "example_input_array", None))
                log_module(run, model, example, call.config)
                if "checkpoint.best_model_path" in tags:
                    _log_best(run, tags["checkpoint.best_model_path"], call.config)

    def on_error(self, call: Call, exc: BaseException) -> None:
        _restore_callbacks(call)
        recorder = call.state.get("recorder")
        if recorder is not None:
            recorder.flush(call.instance)  # the last epoch that finished
        model = call.argument("model")
        if model is not None and call.run is not None:
            log_new_params(call.run, call.managed, loop.model_params(model))


def _restore_callbacks(call: Call) -> None:
    """The trainer's callback list as it was (Lightning may have rebuilt it during fit)."""
    callback = call.state.get("callback")
    if callback is None:
        return
    trainer = call.instance
    current = trainer.callbacks
    if any(c is callback for c in current):
        kept = [c for c in current if c is not callback]
        original = call.state["callbacks"]
        same = len(kept) == len(original) and all(
            a is b for a, b in zip(kept, original, strict=True)
        )
        trainer.callbacks = original if same else kept


def _log_best(run: Any, path: str, config: Any) -> None:
    """The best checkpoint's weights, read without unpickling code (`weights_only=True`; the
    paths older Lightning versions store are allowed). A checkpoint holding other objects is
    left out: its path is in the tag `checkpoint.best_model_path`."""
    import pathlib
    import pickle

    import torch

    allowed = [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath]
    scope = getattr(torch.serialization, "safe_globals", None)
    try:
        with scope(allowed) if scope is not None else contextlib.nullcontext():
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if state:
        log_module(run, dict(state), None, config, path="best_model")


class EvalHooks(Hooks):
    """`Trainer.validate`/`test` after a recorded fit: metrics into that fit's run."""

    opens_run = False

    def after(self, call: Call, result: Any) -> None:
        trainer, model = call.instance, call.argument("model")
        found = _fitted.get(trainer)
        if model is not None and model in _fitted:
            found = _fitted[model]
        metrics = eval_metrics(result)
        if found is not None and metrics:
            run_id, step = found
            tracking.RunHandle(run_id).log_metrics(metrics, step=step)


FIT, EVAL = FitHooks(), EvalHooks()


def targets(module: ModuleType) -> list[PatchTarget]:
    """`Trainer.fit`, `Trainer.validate` and `Trainer.test` of one Lightning package."""
    trainer = getattr(module, "Trainer", None)
    if trainer is None:  # `lightning` without its pytorch part
        return []
    return [
        PatchTarget(trainer, "fit", FIT),
        PatchTarget(trainer, "validate", EVAL),
        PatchTarget(trainer, "test", EVAL),
    ]
