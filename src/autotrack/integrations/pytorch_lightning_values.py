"""What the Lightning integration records, as pure functions of Lightning's objects (no
Lightning import): trainer settings, hparams, optimizer/scheduler/callback settings, and which
callback metrics belong on the epoch axis and which on the step axis."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autotrack.integrations import pytorch_loop as loop

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
