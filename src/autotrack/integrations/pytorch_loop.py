"""Plain PyTorch training loops, recorded with no change to the user's code.

What every loop already does says what happened:
- a step is `optimizer.step()` (torch's global optimizer post-hook); the first step of a new
  optimizer opens its run (one run per optimizer);
- the model is the called module that owns the optimizer's parameters, found by a global
  forward pre-hook that stays installed only until the model is known (`pytorch_model`);
- the loss is the scalar tensor `backward()` is called on, kept detached on its device and
  brought to the host once per epoch (and every N steps for `train_loss_step`): no sync per step;
- an epoch is one pass over the training DataLoader (the loader iterated when the optimizer
  first stepped);
- validation is a torch.nn loss module evaluated with gradients disabled, outside the
  training pass.
The torch-facing entry points live in `pytorch_session.Recorder` (and the model search in
`pytorch_model`); this module holds the pure "what to record" functions, the loss buffer and
the `Session` (one optimizer's run and its bookkeeping).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

#: Optimizer options that select an implementation, not a training setting.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "capturable", "differentiable"})
#: Scheduler attributes that are state or plumbing rather than settings.
SCHEDULER_STATE = frozenset({"optimizer", "last_epoch", "base_lrs", "verbose", "best", "eps"})
NAME = "pytorch"
COMPACT_EVERY = 1024  # detached losses kept before they are summed on their device
EXAMPLE_ROWS = 5


# -- params (pure) ------------------------------------------------------------------------------
def simple_value(value: Any) -> Any:
    """A value worth a param (a number, string, bool, or short tuple of those), else None."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list) and len(value) <= 8:
        items = [simple_value(v) for v in value]
        if all(v is not None for v in items):
            return tuple(items)
        return None
    if type(value).__name__ == "Tensor" and getattr(value, "numel", lambda: 0)() == 1:
        return float(value)
    return None


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """`optimizer` (class name) and `optimizer.<option>` for the constructor's options."""
    params: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    for key, value in sorted(getattr(optimizer, "defaults", {}).items()):
        if key in IMPLEMENTATION_FLAGS:
            continue
        simple = simple_value(value)
        if simple is not None:
            params[f"optimizer.{key}"] = simple
    groups = getattr(optimizer, "param_groups", [])
    if len(groups) > 1:
        params["optimizer.param_groups"] = len(groups)
    return params


def scheduler_params(scheduler: Any) -> dict[str, Any]:
    """`lr_scheduler` (class name) and its public settings (`lr_scheduler.step_size`...)."""
    params: dict[str, Any] = {"lr_scheduler": type(scheduler).__name__}
    for key, value in sorted(vars(scheduler).items()):
        if key.startswith("_") or key in SCHEDULER_STATE:
            continue
        simple = simple_value(value)
        if simple is not None:
            params[f"lr_scheduler.{key}"] = simple
    return params


def unwrap_module(module: Any) -> Any:
    """The user's module inside DistributedDataParallel/DataParallel or `torch.compile`."""
    for _ in range(4):
        inner = getattr(module, "_orig_mod", None)
        if inner is None and type(module).__name__ in ("DistributedDataParallel", "DataParallel"):
            inner = getattr(module, "module", None)
        if inner is None:
            return module
        module = inner
    return module


def model_params(model: Any) -> dict[str, Any]:
    """Model class and parameter counts (total and trainable; none while a lazy module has
    not seen its first batch)."""
    total = trainable = 0
    for parameter in model.parameters():
        if type(parameter).__name__ == "UninitializedParameter":
            return {"model_class": type(model).__name__}
        count = parameter.numel()
        total += count
        trainable += count if parameter.requires_grad else 0
    return {
        "model_class": type(model).__name__,
        "total_params": total,
        "trainable_params": trainable,
    }


def loader_params(loader: Any) -> dict[str, Any]:
    """Batch size and dataset size of the training DataLoader (None where it has none)."""
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is None:
        batch_size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    try:
        dataset_size: int | None = len(loader.dataset)
    except (TypeError, AttributeError, NotImplementedError):
        dataset_size = None
    return {"batch_size": batch_size, "dataset_size": dataset_size}


def device_params(tensors: Iterable[Any]) -> dict[str, Any]:
    """`device` (`cpu`, `cuda:0`...) of the first parameter, and the GPU's name on CUDA."""
    device = next((t.device for t in tensors), None)
    if device is None:
        return {}
    params: dict[str, Any] = {"device": str(device)}
    if device.type == "cuda":
        import torch

        params["device_name"] = torch.cuda.get_device_name(device)
    return params


def optimizer_tensors(optimizer: Any) -> list[Any]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def choose_model(candidates: Iterable[Any], optimizer: Any) -> Any:
    """The called module owning most of the optimizer's parameters (the first one called wins a
    tie, so a wrapper beats the submodule it calls), or None when none owns any."""
    wanted = {id(p) for p in optimizer_tensors(optimizer)}
    best, best_score = None, 0
    for module in candidates:
        score = sum(1 for p in module.parameters() if id(p) in wanted)
        if score > best_score:
            best, best_score = module, score
    return best


def learning_rates(optimizer: Any) -> dict[str, float]:
    """`lr` of the first parameter group, `lr_pg<i>` of the others."""
    rates: dict[str, float] = {}
    for index, group in enumerate(getattr(optimizer, "param_groups", [])):
        value = simple_value(group.get("lr"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            rates["lr" if index == 0 else f"lr_pg{index}"] = float(value)
    return rates


def user_seed() -> int | None:
    """The seed given to `torch.manual_seed`, read back from torch (patching `manual_seed`
    would fight torch._dynamo, which wraps it when imported). torch seeds itself at start-up
    with a random 64-bit number; seeds people choose are smaller, and only those are kept."""
    import torch

    seed = torch.initial_seed()
    return seed if seed < 2**32 else None


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def input_example(batch: Any) -> Any:
    """The first rows of a model's first tensor input as numpy, for the model's signature."""
    import torch

    if not isinstance(batch, torch.Tensor) or batch.dim() == 0:
        return None
    rows = batch[:EXAMPLE_ROWS].detach()
    if rows.dtype in (torch.bfloat16, torch.float16):
        rows = rows.float()
    return rows.cpu().numpy()


def rank_zero() -> bool:
    """Under torch.distributed only rank 0 records."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def length(iterator: Any) -> int | None:
    """Batches in one pass of a DataLoader iterator (None for an iterable dataset)."""
    try:
        return len(iterator)
    except (TypeError, NotImplementedError):
        return None


def exhausted(iterator: Any, batches: int | None) -> bool:
    """Whether a DataLoader iterator has handed out its last batch."""
    return batches is not None and getattr(iterator, "_num_yielded", 0) >= batches


# -- losses kept on their device ------------------------------------------------------------------
class LossBuffer:
    """Detached scalar losses; summed on their device every `COMPACT_EVERY`, and brought to the
    host in one transfer by `take_mean`."""

    __slots__ = ("count", "partials", "pending")

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.partials: list[Any] = []
        self.count = 0

    def add(self, loss: Any) -> None:
        pending = self.pending
        pending.append(loss)
        if len(pending) >= COMPACT_EVERY:
            self.partials.append(_sum(pending))
            self.count += len(pending)
            self.pending = []

    def __len__(self) -> int:
        return self.count + len(self.pending)

    def extend(self, other: LossBuffer) -> None:
        self.partials.extend(other.partials)
        self.count += other.count
        for loss in other.pending:
            self.add(loss)

    def take_mean(self) -> float | None:
        """The mean of everything added since the last call (None if nothing was), then empty."""
        count = len(self)
        if not count:
            return None
        parts = [*self.partials]
        if self.pending:
            parts.append(_sum(self.pending))
        total = parts[0] if len(parts) == 1 else _sum(parts)
        self.pending, self.partials, self.count = [], [], 0
        return float(total.item()) / count


def _sum(tensors: list[Any]) -> Any:
    """Sum of 0-dim tensors on their device, in float64 (mixed dtypes are promoted)."""
    import torch

    try:
        return torch.stack(tensors).double().sum()
    except RuntimeError:  # several devices: add on the host (only at a flush, never per step)
        return torch.tensor(sum(float(t.double().sum().item()) for t in tensors))


class Session:
    """One optimizer's run: where its epoch and loss bookkeeping lives."""

    def __init__(self, optimizer: Any, run: Any, managed: bool, every: int) -> None:
        self.optimizer = weakref.ref(optimizer)
        self.run = run
        self.managed = managed  # autotrack opened the run (and ends it)
        self.every = every
        self.model: Any = None  # None until found; see `gave_up`
        self.gave_up = False  # no called module owns the optimizer's parameters
        self.example: Any = None  # first input rows of the model, for its signature
        self.losses = LossBuffer()  # this epoch's
        self.val = LossBuffer()
        self.val_step = 0
        self.epoch = 0
        self.epoch_open = True
        self.epoch_steps = 0
        self.steps = 0
        self.train_loader: weakref.ref[Any] | None = None
        self.train_iter: weakref.ref[Any] | None = None
        self.epoch_len: int | None = None
        self.val_loader: weakref.ref[Any] | None = None
        self.tries = 0
        self.others: weakref.WeakSet[Any] = weakref.WeakSet()  # optimizers stepping alongside
        self.restore_end: Any = None
