"""Lightning (`lightning` and `pytorch_lightning`): `Trainer.fit`, then `validate`/`test`.

`fit` gets a Lightning Callback added to the trainer for the call (the user's list is left as
it was, and restored after). Before training: trainer settings, `hparams` (the model's and the
datamodule's) and the seed; at train start: optimizer and scheduler config and the
early-stopping/checkpoint settings; at every train-epoch end (validation has run by then):
the callback metrics with step = epoch; every `log_every_n_steps` steps: the step-level ones;
after fit: early-stopping and checkpoint results, the model, and the best checkpoint's
weights. `validate`/`test` after a recorded fit add their metrics to that fit's run.
Only global rank 0 records. The plain-loop capture is silent inside these calls (the engine
marks them as recorded calls).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import weakref
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from autotrack import tracking
from autotrack.integrations import pytorch_loop as loop
from autotrack.integrations.base import Call, Hooks, PatchTarget
from autotrack.integrations.pytorch_model import log_module
from autotrack.integrations.pytorch_session import NAME, log_new_params
from autotrack.safety import safe_callback_methods

TRAINER_SETTINGS = (
    "max_epochs", "max_steps", "min_epochs", "min_steps", "accumulate_grad_batches",
    "gradient_clip_val", "gradient_clip_algorithm", "precision", "num_devices", "num_nodes",
    "check_val_every_n_epoch", "val_check_interval", "limit_train_batches", "limit_val_batches",
)  # fmt: skip


# -- what to record (pure) ----------------------------------------------------------------------
def trainer_params(trainer: Any) -> dict[str, Any]:
    """The Trainer's training settings, with strategy and accelerator by class name."""
    params: dict[str, Any] = {}
    for name in TRAINER_SETTINGS:
        try:
            value = getattr(trainer, name)
        except Exception:  # a property that needs a fitted trainer
            continue
        params[name] = loop.simple_value(value)
    for name in ("strategy", "accelerator"):
        value = getattr(trainer, name, None)
        if value is not None:
            params[name] = type(value).__name__
    return loop.drop_none(params)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hparams as dotted keys; values that are not simple become their text."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif value is not None:
            simple = loop.simple_value(value)
            flat[name] = simple if simple is not None else str(value)[:500]
    return flat


def merge_params(base: dict[str, Any], hparams: Mapping[str, Any]) -> dict[str, Any]:
    """hparams under their own names; one that clashes with a setting goes to `hparams.<k>`."""
    merged = dict(base)
    for key, value in hparams.items():
        if key in merged and str(merged[key]) != str(value):
            merged[f"hparams.{key}"] = value
        else:
            merged[key] = value
    return merged


def optimizers_params(optimizers: list[Any], schedulers: list[Any]) -> dict[str, Any]:
    """The first optimizer in full, the names of the others, and the first scheduler."""
    params: dict[str, Any] = {}
    if optimizers:
        params.update(loop.optimizer_params(optimizers[0]))
    if len(optimizers) > 1:
        params["optimizers"] = ", ".join(type(o).__name__ for o in optimizers)
    if schedulers:
        config = schedulers[0]
        params.update(loop.scheduler_params(config.scheduler))
        params["lr_scheduler.interval"] = getattr(config, "interval", None)
        params["lr_scheduler.monitor"] = getattr(config, "monitor", None)
    return loop.drop_none(params)


def callbacks_params(callbacks: list[Any]) -> dict[str, Any]:
    """EarlyStopping and ModelCheckpoint settings."""
    params: dict[str, Any] = {}
    for callback in callbacks:
        kind = type(callback).__mro__
        names = {c.__name__ for c in kind}
        if "EarlyStopping" in names:
            params["early_stopping.monitor"] = callback.monitor
            params["early_stopping.mode"] = callback.mode
            params["early_stopping.patience"] = callback.patience
            params["early_stopping.min_delta"] = abs(float(callback.min_delta))
        elif "ModelCheckpoint" in names:
            params["checkpoint.monitor"] = callback.monitor
            params["checkpoint.mode"] = callback.mode
            params["checkpoint.save_top_k"] = callback.save_top_k
    return loop.drop_none(params)


def number(value: Any) -> float | None:
    """A finite float from a number or a one-element tensor, else None."""
    try:
        if hasattr(value, "numel") and value.numel() != 1:
            return None
        result = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return result if math.isfinite(result) else None


def callbacks_results(callbacks: list[Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Early-stopping results and the best checkpoint's score (metrics), and its path (tag)."""
    metrics: dict[str, Any] = {}
    tags: dict[str, str] = {}
    for callback in callbacks:
        names = {c.__name__ for c in type(callback).__mro__}
        if "EarlyStopping" in names:
            metrics["early_stopping.stopped_epoch"] = number(callback.stopped_epoch)
            metrics["early_stopping.wait_count"] = number(callback.wait_count)
            metrics["early_stopping.best_score"] = number(callback.best_score)
        elif "ModelCheckpoint" in names and callback.monitor:
            metrics["checkpoint.best_model_score"] = number(callback.best_model_score)
            if callback.best_model_path:
                tags["checkpoint.best_model_path"] = str(callback.best_model_path)
    return loop.drop_none(metrics), tags


def fresh(metrics: Mapping[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """Entries whose value is a new object since the last look. Lightning recomputes the
    running loop's metrics on every read and keeps the others (the last validation's) as
    they were, so a validation that did not run this epoch is not logged again."""
    new = {k: v for k, v in metrics.items() if seen.get(k) is not v}
    seen.update(metrics)
    return new


def epoch_metrics(new: Mapping[str, Any], every: Mapping[str, Any]) -> dict[str, float]:
    """Epoch-axis metrics: a metric logged on step and epoch appears once, under its name."""
    out: dict[str, float] = {}
    for key, value in new.items():
        if key.endswith("_step") and key[:-5] in every:
            continue
        if key.endswith("_epoch") and key[:-6] in every:
            continue
        scalar = number(value)
        if scalar is not None:
            out[key] = scalar
    return out


def step_metrics(new: Mapping[str, Any], every: Mapping[str, Any]) -> dict[str, float]:
    """Step-axis metrics, always named `<name>_step` so no series mixes steps and epochs."""
    out: dict[str, float] = {}
    for key, value in new.items():
        if key.endswith("_epoch") or f"{key}_step" in every:
            continue
        scalar = number(value)
        if scalar is not None:
            out[key if key.endswith("_step") else f"{key}_step"] = scalar
    return out


def eval_metrics(results: Any) -> dict[str, float]:
    """`validate`/`test` results (one dict per dataloader) as metrics."""
    merged: dict[str, float] = {}
    for entry in results if isinstance(results, list) else []:
        for key, value in dict(entry).items():
            scalar = number(value)
            if scalar is not None:
                merged[str(key)] = scalar
    return merged


def rank_zero() -> bool:
    """Lightning's own idea of the global rank (set from the launcher's environment)."""
    try:
        from lightning_utilities.core.rank_zero import rank_zero_only
    except ImportError:
        return True
    return getattr(rank_zero_only, "rank", 0) in (0, None)


# -- the callback ----------------------------------------------------------------------------
class FitRecorder:
    """What the injected callback does during one fit (kept free of Lightning)."""

    def __init__(self, call: Call, every: int) -> None:
        self.call = call
        self.run = call.run
        self.every = every
        self.seen: dict[str, Any] = {}
        self.epochs_logged = 0
        self.last_step_logged = -1
        self.rates: dict[str, float] = {}

    def train_start(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        params = optimizers_params(list(trainer.optimizers), list(trainer.lr_scheduler_configs))
        params.update(callbacks_params(list(trainer.callbacks)))
        log_new_params(self.run, self.call.managed, params)
        fresh(trainer.callback_metrics, self.seen)  # what the sanity check left is not news

    def epoch_start(self, trainer: Any) -> None:
        """The learning rate this epoch trains with (epoch schedulers step before its end)."""
        self.rates = loop.learning_rates(trainer.optimizers[0]) if trainer.optimizers else {}

    def batch_end(self, trainer: Any) -> None:
        step = trainer.global_step
        if not self.every or step % self.every or step == self.last_step_logged:
            return
        if not trainer.is_global_zero:
            return
        self.last_step_logged = step
        metrics = trainer.callback_metrics
        values = step_metrics(fresh(metrics, self.seen), metrics)
        if values:
            self.run.log_metrics(values, step=step)  # type: ignore[union-attr]

    def epoch_end(self, trainer: Any) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        values = epoch_metrics(fresh(metrics, self.seen), metrics)
        if "lr" not in values:
            values.update(self.rates)
        if values:
            self.run.log_metrics(values, step=trainer.current_epoch)  # type: ignore[union-attr]
        self.epochs_logged += 1


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
