"""Keras / TensorFlow: `Model.fit` and `Model.evaluate`, for tf.keras (Keras 2) and Keras 3 on
any backend.

`fit` gets a Keras callback appended to a copy of the user's callbacks: it streams the epoch
logs (step = epoch index, so fine-tuning with `initial_epoch` continues the curves), the
learning rate when it moves, optional batch metrics and EarlyStopping results. Params are read
from the fit arguments and the compiled model before training; the model summary and the model
itself after it. `evaluate` on a model whose fit was recorded adds `eval_*` metrics to that run.
The callback class is created from the Keras package the model comes from, on first use, so
this module never imports a framework.
"""

from __future__ import annotations

import inspect
import shutil
import sys
import tempfile
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from autotrack.autolog import make_autolog
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.integrations.keras_record import RECORDED as RECORDED
from autotrack.integrations.keras_record import (
    batch_size_of,
    compile_params,
    early_stopping_params,
    early_stopping_results,
    example_of,
    fit_params,
    is_array_like,
    learning_rate,
    optimizer_params,
    param_counts,
    replace_argument,
    scalar_metrics,
    symbolic_tensors,
    with_callback,
)
from autotrack.safety import safe_callback_methods

if TYPE_CHECKING:
    from autotrack.tracking import RunHandle

NAME = "tensorflow"
#: Keras packages whose `Model` is patched. tf.keras is the `keras` package in TF 2.15 and in
#: TF >= 2.16 (Keras 3); the legacy `tf_keras` package is not covered.
KERAS_PACKAGES = ("keras",)
SUMMARY_FILE = "model_summary.txt"


@dataclass(frozen=True)
class KerasConfig(CommonConfig):
    """`log_every_n_steps`: also log batch metrics (`batch_<name>`) every N training batches,
    at step = global batch index. Off by default: batch hooks make Keras sync every batch."""

    log_every_n_steps: int | None = None

    def __post_init__(self) -> None:
        n = self.log_every_n_steps
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise TypeError(f"log_every_n_steps must be a positive integer or None, got {n!r}")


# -- the callback injected into fit ------------------------------------------------------------
class FitRecorder:
    """What the injected Keras callback does during one fit (kept free of Keras)."""

    def __init__(self, call: Call, every_n_steps: int | None, early_stops: list[Any],
                 schedule: bool, watch_lr: bool, restores_at_end: bool) -> None:  # fmt: skip
        assert call.run is not None  # fit always records into a run
        self.call = call
        self.run: RunHandle = call.run
        self.every_n_steps = every_n_steps
        self.early_stops = early_stops
        self.restores_at_end = restores_at_end
        self.last_epoch: int | None = None
        self.steps: int | None = None
        self.epoch_base = 0
        self.last_step = 0
        self.next_batch_log = every_n_steps or 0
        self.lr_moving = schedule  # a schedule: log the rate every epoch
        self.watch_lr = schedule or watch_lr  # without one, only a callback can change it
        self.lr_start: float | None = None
        self.lr_seen: list[tuple[int, float]] = []  # epochs before the rate first moved

    def train_begin(self, model: Any, params: Mapping[str, Any]) -> None:
        self.model = model
        steps = params.get("steps") if params else None
        self.steps = int(steps) if isinstance(steps, int) else None
        if self.call.argument("steps_per_epoch") is None and self.steps is not None:
            _log_new_params(self.call, {"steps_per_epoch": self.steps})
        self.lr_start = learning_rate(model.optimizer)

    def epoch_begin(self, epoch: int) -> None:
        self.epoch_base = epoch * self.steps if self.steps else self.last_step

    def epoch_end(self, epoch: int, logs: Mapping[str, Any] | None) -> None:
        self.last_epoch = epoch
        metrics = scalar_metrics(logs)
        if self.watch_lr and "learning_rate" not in metrics and "lr" not in metrics:
            metrics.update(self._learning_rate(epoch))
        self.run.log_metrics(metrics, step=epoch)

    def _learning_rate(self, epoch: int) -> dict[str, float]:
        """The rate when it moves (schedule, or a callback that sets it): from the first
        change on, and back-filled for the epochs before it."""
        rate = learning_rate(self.model.optimizer)
        if rate is None:
            return {}
        if not self.lr_moving and rate == self.lr_start:
            self.lr_seen.append((epoch, rate))
            return {}
        self.lr_moving = True
        for earlier, value in self.lr_seen:
            self.run.log_metrics({"learning_rate": value}, step=earlier)
        self.lr_seen.clear()
        return {"learning_rate": rate}

    def batch_end(self, batch: int, logs: Mapping[str, Any] | None) -> None:
        step = self.last_step = self.epoch_base + batch + 1  # Keras passes the batch index
        if self.every_n_steps and step >= self.next_batch_log:
            self.next_batch_log = (step // self.every_n_steps + 1) * self.every_n_steps
            self.run.log_metrics(scalar_metrics(logs, "batch_"), step=step)

    def train_end(self) -> None:
        results: dict[str, float] = {}
        for callback in self.early_stops:
            results.update(early_stopping_results(callback, self.restores_at_end))
        if results:
            self.run.log_metrics(results, step=self.last_epoch or 0)


_callback_classes: dict[tuple[type, str], type] = {}


def callback_class(base: type, kind: str) -> type:
    """The callback class autotrack injects, subclassing the user's Keras `Callback` (created
    once per Keras package). `kind` is "epochs", "batches" (adds the batch hook: Keras syncs
    every batch for callbacks that define one, so only when asked) or "evaluate"."""
    key = (base, kind)
    cls = _callback_classes.get(key)
    if cls is not None:
        return cls

    class AutotrackCallback(base):  # type: ignore[valid-type,misc]
        async_safe = True  # Keras 3 may run our batch hook off the training thread

        def __init__(self, recorder: Any) -> None:
            super().__init__()
            self.recorder = recorder
            self.call = recorder.call  # safety reports errors under this call's run

        def on_train_begin(self, logs: Any = None) -> None:
            self.recorder.train_begin(self.model, self.params)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.recorder.epoch_end(epoch, logs)

        def on_train_end(self, logs: Any = None) -> None:
            self.recorder.train_end()

    class AutotrackBatchCallback(AutotrackCallback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.recorder.epoch_begin(epoch)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.recorder.batch_end(batch, logs)

    class AutotrackEvaluateCallback(base):  # type: ignore[valid-type,misc]
        def __init__(self, call: Call) -> None:
            super().__init__()
            self.call = call
            self.logs: dict[str, Any] | None = None

        def on_test_end(self, logs: Any = None) -> None:
            self.logs = dict(logs or {})

    for made in (AutotrackCallback, AutotrackBatchCallback, AutotrackEvaluateCallback):
        safe_callback_methods(made, integration=NAME)
    _callback_classes[(base, "epochs")] = AutotrackCallback
    _callback_classes[(base, "batches")] = AutotrackBatchCallback
    _callback_classes[(base, "evaluate")] = AutotrackEvaluateCallback
    return _callback_classes[key]


def keras_package(model: Any) -> ModuleType:
    """The Keras package that `model`'s class comes from (its `callbacks` module is used)."""
    for cls in type(model).__mro__:
        top = (cls.__module__ or "").split(".", 1)[0]
        if cls.__name__ == "Model" and top in KERAS_PACKAGES and top in sys.modules:
            return sys.modules[top]
    return sys.modules["keras"]


def _signature(function: Any) -> tuple[list[str], dict[str, Any]]:
    """Parameter names (without self) and defaults of the original fit/evaluate."""
    parameters = inspect.signature(function).parameters.values()
    names = [p.name for p in parameters if p.name != "self"]
    defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
    return names, defaults


def _inject(call: Call, callback: Any) -> None:
    names, _ = _signature(call.original)
    callbacks = with_callback(call.argument("callbacks"), callback)
    call.args, call.kwargs = replace_argument(names, call.args, call.kwargs, "callbacks", callbacks)


def _log_new_params(call: Call, params: Mapping[str, Any]) -> None:
    """Log params, dropping None values; in the user's own run, keep what an earlier fit
    logged (params are write-once: a second fit with other `epochs` must not fail)."""
    clean = {k: v for k, v in params.items() if v is not None}
    if call.run is not None and clean:
        call.run.log_params(clean, keep_existing=not call.managed)


# -- hooks ------------------------------------------------------------------------------------
#: model -> (run id, last epoch) of its latest recorded fit, for `evaluate` afterwards.
_fitted: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()


class FitHooks(Hooks):
    """`Model.fit`: params before, metrics streamed by the callback, model after."""

    def before(self, call: Call) -> None:
        model = call.instance
        package = keras_package(model)
        _, defaults = _signature(call.original)
        bound = call.bound()
        params = fit_params(bound.arguments if bound else call.kwargs, defaults)
        params["batch_size"] = batch_size_of(call.argument("x"), params.get("batch_size"))
        params.update(optimizer_params(model.optimizer))
        config = model.get_compile_config() if hasattr(model, "get_compile_config") else None
        params.update(compile_params(config, getattr(model, "loss", None)))
        user_callbacks = with_callback(call.argument("callbacks"), None)[:-1]
        early_stops = [c for c in user_callbacks if isinstance(c, package.callbacks.EarlyStopping)]
        for callback in early_stops:
            params.update(early_stopping_params(callback))
        if model.built:
            params.update(param_counts(model))
            call.state["counted"] = True
        _log_new_params(call, params)
        call.run.set_tags(_backend_tags(package))  # type: ignore[union-attr]
        every = getattr(call.config, "log_every_n_steps", None)
        recorder = FitRecorder(
            call,
            every_n_steps=every,
            early_stops=early_stops,
            schedule=isinstance(params.get("optimizer_learning_rate"), str),
            watch_lr=bool(user_callbacks),
            restores_at_end=not str(getattr(package, "__version__", "3")).startswith("2."),
        )
        cls = callback_class(package.callbacks.Callback, "batches" if every else "epochs")
        _inject(call, cls(recorder))
        call.state["recorder"] = recorder

    def after(self, call: Call, result: Any) -> None:
        model = call.instance
        recorder: FitRecorder = call.state["recorder"]
        run = call.run
        assert run is not None
        if recorder.last_epoch is not None:
            _fitted[model] = (run.run_id, recorder.last_epoch)
        self._log_structure(call)
        if call.config.log_datasets:
            _log_datasets(call)
        if call.config.log_models:
            _log_model(call)

    def on_error(self, call: Call, exc: BaseException) -> None:
        if call.run is not None and not call.state.get("counted") and call.instance.built:
            _log_new_params(call, param_counts(call.instance))

    def _log_structure(self, call: Call) -> None:
        """Parameter counts (if the model was built by training) and `model_summary.txt`."""
        model = call.instance
        if not model.built:
            return
        if not call.state.get("counted"):
            _log_new_params(call, param_counts(model))
        lines: list[str] = []
        model.summary(print_fn=lambda text, **_: lines.append(str(text)))
        call.run.defer(call.run.log_text, "\n".join(lines) + "\n", SUMMARY_FILE)  # type: ignore[union-attr]


def _backend_tags(package: ModuleType) -> dict[str, str]:
    backend: Any = getattr(package, "backend", None)
    name = backend.backend() if hasattr(backend, "backend") else "tensorflow"
    return {"keras.version": str(getattr(package, "__version__", "unknown")),
            "keras.backend": str(name)}  # fmt: skip


def _log_datasets(call: Call) -> None:
    """Fingerprints of array inputs (train and validation); pipelines are not read twice."""
    from autotrack.datasets import log_dataset

    x, y = call.argument("x"), call.argument("y")
    if is_array_like(x) and not isinstance(x, (Mapping, list, tuple)):
        log_dataset(call.run, x, y if is_array_like(y) else None, "train")  # type: ignore[arg-type]
    validation = call.argument("validation_data")
    if isinstance(validation, (list, tuple)) and validation and hasattr(validation[0], "shape"):
        val_y = validation[1] if len(validation) > 1 else None
        log_dataset(call.run, validation[0], val_y, "validation")  # type: ignore[arg-type]


def _log_model(call: Call) -> None:
    """Save the model now (training may continue on it right after fit returns), then hand
    the upload to the background worker. The signature comes from the data the user fed and
    the model's own output tensors, so the model is never run for it."""
    from autotrack.models import save_model
    from autotrack.models.signature import infer_signature

    model, config, run = call.instance, call.config, call.run
    assert run is not None
    example = example_of(call.argument("x"))
    inputs, outputs = symbolic_tensors(model)
    signature = None
    if config.log_model_signatures and (example is not None or inputs is not None):
        signature = infer_signature(example if example is not None else inputs, outputs)
    folder = Path(tempfile.mkdtemp(prefix="autotrack-keras-"))
    try:
        with warnings.catch_warnings():
            if config.silent:  # e.g. "saved the weights only" for an unserialisable model
                warnings.simplefilter("ignore")
            save_model(
                model,
                folder / "model",
                signature=signature,
                X=example,
                log_input_example=config.log_input_examples,
                log_signature=config.log_model_signatures,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    run.defer(_upload_model, run, folder)


def _upload_model(run: Any, folder: Path) -> None:
    try:
        run.log_artifacts(folder / "model", "model")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class EvaluateHooks(Hooks):
    """`evaluate` after a recorded fit: `eval_<metric>` on that fit's run, at its last epoch."""

    opens_run = False

    def records(self, call: Call) -> bool:
        internal = call.kwargs.get("_use_cached_eval_dataset")  # fit's own validation pass
        return not internal and _fitted.get(call.instance) is not None

    def before(self, call: Call) -> None:
        base = keras_package(call.instance).callbacks.Callback
        capture = callback_class(base, "evaluate")(call)
        _inject(call, capture)
        call.state["capture"] = capture

    def after(self, call: Call, result: Any) -> None:
        from autotrack.tracking import RunHandle

        fitted = _fitted.get(call.instance)
        if fitted is None:
            return
        run_id, step = fitted
        logs = call.state["capture"].logs
        if logs is None:
            logs = result if isinstance(result, Mapping) else {"loss": result}
        metrics = scalar_metrics(logs, "eval_")
        if metrics:
            RunHandle(run_id).log_metrics(metrics, step=step)


# -- the integration ----------------------------------------------------------------------------
def model_class(module: ModuleType) -> type | None:
    """The `Model` class to patch, from whichever module fired the import hook: a Keras
    package, or TensorFlow (whose `tf.keras` is the `keras` package, already imported by TF
    itself; a half-imported one is left to its own hook)."""
    name = module.__name__
    package = module if name in KERAS_PACKAGES else sys.modules.get("keras")
    cls = getattr(package, "Model", None)
    return cls if isinstance(cls, type) else None


class KerasIntegration(Integration):
    name = NAME
    config_class = KerasConfig

    def framework_version(self, module: ModuleType) -> str:
        """The Keras version (what is patched), also when TensorFlow fired the hook; TF's own
        while its Keras is still half-imported (both lie in the registry's range)."""
        keras = module if module.__name__ in KERAS_PACKAGES else sys.modules.get("keras")
        version = getattr(keras, "__version__", None) if model_class(module) else None
        return str(version or getattr(module, "__version__", "unknown"))

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        cls = model_class(module)
        if cls is None:
            return []
        return [PatchTarget(cls, "fit", FitHooks()), PatchTarget(cls, "evaluate", EvaluateHooks())]


INTEGRATION = KerasIntegration()
autolog = make_autolog(INTEGRATION)
