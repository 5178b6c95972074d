"""PyTorch: plain training loops with no code change, and Lightning's Trainer.

`autotrack.pytorch.autolog()` (alias `autotrack.torch.autolog()`, or `autotrack.autolog()`).

Plain loops (rules in `pytorch_loop`, bookkeeping in `pytorch_session`): a run opens at an
optimizer's first `step()` and ends when the process exits, when the user's enclosing
`autotrack.start_run()` block ends, or when a new optimizer starts stepping. It records
- params: `optimizer` and `optimizer.<option>`, `lr_scheduler` and `lr_scheduler.<setting>`,
  `batch_size` and `dataset_size` of the training DataLoader, `model_class`, `total_params`,
  `trainable_params`, `seed` (given to `torch.manual_seed`, read back with
  `torch.initial_seed()`), `device` (and `device_name` on CUDA);
- metrics: `train_loss` per epoch (mean of the losses `backward()` ran on during one pass over
  the training DataLoader; step = epoch), `train_loss_step` every `log_every_n_steps` optimizer
  steps, `lr` per epoch, `val_loss` per epoch (torch.nn loss modules evaluated with gradients
  disabled), `gpu_peak_memory_mb` on CUDA (the peak so far at each epoch's end: torch's
  counter is not reset, the user may read it too);
- the model: the module the optimizer trains, as a safetensors state dict (`model/`), with its
  `repr` (`model/model_repr.txt`). `autotrack.load_model(uri)` gives the state dict back,
  `autotrack.load_model(uri, model_class=Net)` the module.
`autotrack.pytorch.end_run()` ends the loop's run early (a notebook, where the process stays).
`enable_extras` installs torch's global hooks (optimizer step; module forward while looking
for the model) and the two per-step patches (`Tensor.backward`, the `forward` of torch.nn loss
classes: plain functions, see `pytorch_hotpath`); the engine patches `DataLoader.__iter__`, LR
scheduler constructors and `GradScaler.scale`. Lightning: see `pytorch_lightning`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from autotrack.autolog import make_autolog
from autotrack.integrations import pytorch_lightning
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.integrations.pytorch_session import NAME, Recorder

RECORDER = Recorder()


@dataclass(frozen=True)
class PyTorchConfig(CommonConfig):
    """`log_every_n_steps`: `train_loss_step` (plain loops) and Lightning's step-level metrics
    every N optimizer steps (one host transfer each); None or 0 turns them off.
    `log_loops`: record plain training loops (False: Lightning only)."""

    log_every_n_steps: int | None = 50
    log_loops: bool = True


# -- engine hooks for plain loops (once per epoch or rarer; the per-step ones: pytorch_hotpath) --
class LoaderHooks(Hooks):
    """`DataLoader.__iter__`: a pass over a loader begins (epochs, the training loader)."""

    opens_run = False

    def records(self, call: Call) -> bool:
        return RECORDER.refresh(call.config)

    def after(self, call: Call, result: Any) -> None:
        RECORDER.on_loader_iter(call.instance, result)


class SchedulerHooks(Hooks):
    """LR scheduler constructors: the scheduler's class and settings, for its optimizer."""

    opens_run = False

    def records(self, call: Call) -> bool:
        return RECORDER.refresh(call.config)

    def after(self, call: Call, result: Any) -> None:
        RECORDER.on_scheduler(call.instance)


class ScaleHooks(Hooks):
    """`GradScaler.scale(loss)`: remember the unscaled loss for the backward that follows."""

    opens_run = False

    def records(self, call: Call) -> bool:
        if RECORDER.refresh(call.config) and call.args:
            RECORDER.on_scale(call.args[0])
        return False


def loop_targets(torch: ModuleType) -> list[PatchTarget]:
    """Where plain loops are observed (only where torch has no global hook)."""
    from torch.optim import lr_scheduler
    from torch.utils.data import DataLoader

    found = [PatchTarget(DataLoader, "__iter__", LoaderHooks())]
    scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)  # torch >= 2.3
    if scaler is None:
        scaler = getattr(torch.cuda.amp, "GradScaler", None)
    if scaler is not None and "scale" in vars(scaler):
        found.append(PatchTarget(scaler, "scale", ScaleHooks()))
    scheduler_hooks = SchedulerHooks()
    for _, cls in inspect.getmembers(lr_scheduler, inspect.isclass):
        if issubclass(cls, lr_scheduler.LRScheduler) and "__init__" in vars(cls):
            found.append(PatchTarget(cls, "__init__", scheduler_hooks))
    return found


class PyTorchIntegration(Integration):
    name = NAME
    config_class = PyTorchConfig

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        if module.__name__ == "torch":
            return loop_targets(module)
        return pytorch_lightning.targets(module)  # lightning / pytorch_lightning

    def enable_extras(self, module: ModuleType, config: CommonConfig) -> None:
        RECORDER.enable(config)

    def disable_extras(self) -> None:
        RECORDER.disable()


def end_run(status: str = "FINISHED") -> None:
    """End the run of the plain loop being recorded now (in a notebook, say, where the process
    does not exit); the model is logged if the status is FINISHED. The next optimizer step
    opens a new run."""
    from autotrack.entities import RunStatus

    RECORDER.end_session(RunStatus(str(status).upper()))


# What a run records (`*` = any text); the README table is generated from this and tests
# check real runs against it.
RECORDED = {
    "params": {
        "optimizer": "optimizer class",
        "optimizer.*": "its hyperparameters (lr, betas, eps, weight_decay, momentum...)",
        "lr_scheduler": "LR scheduler class",
        "lr_scheduler.*": "its settings (Lightning: also interval, monitor)",
        "batch_size": "the training DataLoader's batch size",
        "dataset_size": "and its dataset's length",
        "model_class": "the trained module's class",
        "total_params": "parameter count",
        "trainable_params": "trainable parameter count",
        "seed": "the seed given to torch.manual_seed / seed_everything",
        "device*": "cpu or cuda (and the GPU's name)",
        "*": "Lightning: Trainer settings (max_epochs, precision, accumulate_grad_batches...) "
        "and the module's and datamodule's hparams",
        "early_stopping.*": "Lightning EarlyStopping settings",
        "checkpoint.*": "Lightning ModelCheckpoint settings",
    },
    "metrics": {
        "train_loss": "plain loops: mean loss of each pass over the training DataLoader",
        "train_loss_step": "every log_every_n_steps optimizer steps, step = global step",
        "val_loss": "plain loops: mean loss computed with gradients disabled, per epoch",
        "lr*": "learning rate per epoch (lr_pg<i> for extra parameter groups)",
        "gpu_peak_memory_mb": "on CUDA, per epoch",
        "*": "Lightning: every epoch-end callback metric (step = epoch), `<name>_step` every "
        "N steps, validate()/test() results after fit",
        "early_stopping.*": "stopped_epoch, wait_count, best_score",
        "checkpoint.best_model_score": "the best checkpoint's monitored value",
    },
    "tags": {"checkpoint.best_model_path": "Lightning: where the best checkpoint is"},
    "artifacts": {
        "model/": "safetensors state dict, model_repr.txt, signature, input example",
        "best_model/": "Lightning: the best checkpoint's weights",
    },
}

INTEGRATION = PyTorchIntegration()
autolog = make_autolog(INTEGRATION)
