"""What the Keras integration records, computed from Keras objects and fit arguments: pure
functions (no logging, no Keras import), so each is easy to test on its own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: fit arguments that are data or plumbing rather than training settings.
NOT_PARAMS = frozenset(
    {"self", "x", "y", "callbacks", "validation_data", "verbose", "sample_weight", "kwargs"}
)
DEFAULT_BATCH_SIZE = 32  # what Keras uses for arrays when batch_size is None
EXAMPLE_ROWS = 5


def fit_params(arguments: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The fit arguments that shape training, with Keras' defaults for those not passed."""
    merged = {**defaults, **arguments}
    return {k: v for k, v in merged.items() if k not in NOT_PARAMS and not k.startswith("_")}


def batch_size_of(x: Any, batch_size: Any) -> int | None:
    """The batch size training really used: the argument, Keras' default for arrays, a
    batched tf.data pipeline's own size, or a PyDataset's `batch_size` attribute."""
    if batch_size is not None:
        return int(batch_size)
    dataset, depth = x, 0
    while dataset is not None and depth < 16:  # tf.data: walk .prefetch().cache()... to .batch()
        size = getattr(dataset, "_batch_size", None)
        if size is not None:
            return int(size)
        dataset, depth = getattr(dataset, "_input_dataset", None), depth + 1
    if is_array_like(x):
        return DEFAULT_BATCH_SIZE
    size = getattr(x, "batch_size", None)
    return size if isinstance(size, int) else None


def is_array_like(x: Any) -> bool:
    if isinstance(x, Mapping):
        return bool(x) and all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(is_array_like(v) for v in x)
    return hasattr(x, "shape") and hasattr(x, "dtype") and not hasattr(x, "element_spec")


def flatten_config(prefix: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """`{"learning_rate": 0.01}` -> `{"<prefix>_learning_rate": 0.01}`; a serialised Keras
    object (a schedule) becomes its class name plus its own flattened config."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "name":
            continue
        name = f"{prefix}_{key}"
        if isinstance(value, Mapping) and "class_name" in value:
            out[name] = value["class_name"]
            inner = value.get("config")
            if isinstance(inner, Mapping):
                out.update(flatten_config(name, inner))
        elif isinstance(value, Mapping):
            out.update(flatten_config(name, value))
        else:
            out[name] = value
    return out


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """`optimizer_name` and `optimizer_<key>` for every entry of the optimizer's config."""
    if optimizer is None or isinstance(optimizer, str):
        return {"optimizer_name": optimizer} if optimizer else {}
    params: dict[str, Any] = {"optimizer_name": type(optimizer).__name__}
    params.update(flatten_config("optimizer", optimizer.get_config()))
    return params


def describe(value: Any) -> str:
    """A readable name for a loss or metric given as a string, function, object, a serialised
    Keras object, or a list/dict of those (multi-output models)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "class_name" in value:
            config = value.get("config")
            if isinstance(config, str):  # a serialised function
                return config
            if isinstance(config, Mapping) and config.get("name"):
                return str(config["name"])
            return str(value["class_name"])
        return ", ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(describe(v) for v in value)
    name = getattr(value, "name", None) or getattr(value, "__name__", None)
    return str(name) if name else type(value).__name__


def compile_params(compile_config: Mapping[str, Any] | None, loss: Any) -> dict[str, Any]:
    """`loss`, `metrics`, `weighted_metrics`, `loss_weights` as given to `compile`."""
    config = dict(compile_config or {})
    params: dict[str, Any] = {"loss": describe(config.get("loss", loss))}
    for key in ("metrics", "weighted_metrics"):
        if config.get(key):
            params[key] = describe(config[key])
    if config.get("loss_weights") is not None:
        params["loss_weights"] = config["loss_weights"]
    return params


def param_counts(model: Any) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a built model."""
    trainable = sum(_size(w) for w in model.trainable_weights)
    frozen = sum(_size(w) for w in model.non_trainable_weights)
    return {
        "total_params": trainable + frozen,
        "trainable_params": trainable,
        "non_trainable_params": frozen,
    }


def _size(weight: Any) -> int:
    return math.prod(int(d) for d in tuple(weight.shape))


def scalar(value: Any) -> float | None:
    """A metric value as a float, or None for what is not one number (a per-class array)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) == 0:
        try:
            return float(value)  # numpy scalars, 0-d tensors and variables: 4x faster than numpy
        except (TypeError, ValueError):
            pass  # e.g. a Keras 3.3 variable has no __float__
    try:
        import numpy as np

        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.size == 1 and array.dtype.kind in "fiu":
        return float(array.reshape(()))
    return None


def scalar_metrics(logs: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
    """Every single-number entry of a Keras logs dict, keys kept as Keras names them."""
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        number = scalar(value)
        if number is not None:
            out[prefix + str(key)] = number
    return out


def early_stopping_params(callback: Any) -> dict[str, Any]:
    """How an EarlyStopping callback was configured (`min_delta` as given: Keras 2 stores it
    negated when lower is better)."""
    keys = ("monitor", "patience", "min_delta", "baseline", "restore_best_weights",
            "start_from_epoch", "mode")  # fmt: skip
    params = {f"early_stopping_{k}": getattr(callback, k) for k in keys if hasattr(callback, k)}
    if isinstance(params.get("early_stopping_min_delta"), (int, float)):
        params["early_stopping_min_delta"] = abs(params["early_stopping_min_delta"])
    return params


def early_stopping_results(callback: Any, restores_at_end: bool) -> dict[str, float]:
    """`stopped_epoch` (when it stopped training), `best_epoch`, `best_<monitor>` and
    `restored_epoch` (when the best weights were put back: Keras 3 restores at the end of
    training whether or not it stopped early; Keras 2 only when it stopped)."""
    out: dict[str, float] = {}
    stopped = int(getattr(callback, "stopped_epoch", 0) or 0)
    if stopped > 0:
        out["stopped_epoch"] = stopped
    best = scalar(getattr(callback, "best", None))
    if best is not None and math.isfinite(best):
        out[f"best_{callback.monitor}"] = best
        out["best_epoch"] = int(getattr(callback, "best_epoch", 0) or 0)
        restored = getattr(callback, "restore_best_weights", False) and (
            getattr(callback, "best_weights", None) is not None
        )
        if restored and (stopped > 0 or restores_at_end):
            out["restored_epoch"] = out["best_epoch"]
    return out


def learning_rate(optimizer: Any) -> float | None:
    """The optimizer's current learning rate (a Keras 2 schedule is evaluated at the step)."""
    value = getattr(optimizer, "learning_rate", None)
    if value is None:
        return None
    if callable(value) and not hasattr(value, "dtype"):
        value = value(optimizer.iterations)
    return scalar(value)


def with_callback(callbacks: Any, extra: Any) -> list[Any]:
    """A new list: the user's callbacks (a list, tuple, one callback or a CallbackList) + extra."""
    if callbacks is None:
        return [extra]
    if isinstance(callbacks, (list, tuple)):
        return [*callbacks, extra]
    inner = getattr(callbacks, "callbacks", None)  # a keras CallbackList
    if isinstance(inner, list):
        return [*inner, extra]
    return [callbacks, extra]


def replace_argument(
    names: list[str], args: tuple[Any, ...], kwargs: dict[str, Any], name: str, value: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """New (args, kwargs) with argument `name` set to `value`, wherever the user passed it."""
    index = names.index(name)
    if index < len(args):
        return (*args[:index], value, *args[index + 1 :]), dict(kwargs)
    return tuple(args), {**kwargs, name: value}


def head(data: Any, rows: int = EXAMPLE_ROWS) -> Any:
    """The first rows of array-like inputs (dicts and lists of arrays included)."""
    if isinstance(data, Mapping):
        return {k: head(v, rows) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [head(v, rows) for v in data]
    return data.iloc[:rows] if hasattr(data, "iloc") else data[:rows]


def example_of(x: Any) -> Any:
    """A few input rows: sliced from arrays, or the first batch of a tf.data pipeline."""
    if is_array_like(x):
        return head(x)
    if hasattr(x, "element_spec") and hasattr(x, "take"):
        batch = next(iter(x.take(1)))
        features = batch[0] if isinstance(batch, (tuple, list)) else batch
        return head(features)
    return None  # generators and PyDatasets: reading them would consume or re-run user code


def symbolic_tensors(model: Any) -> tuple[Any, Any]:
    """A functional/Sequential model's input and output tensors (one, or a list), which carry
    shape and dtype; (None, None) for a subclassed model, which has none."""
    try:
        inputs, outputs = list(model.inputs or ()), list(model.outputs or ())
    except (AttributeError, ValueError):
        return None, None
    if not inputs or not outputs:
        return None, None
    return (inputs[0] if len(inputs) == 1 else inputs), (
        outputs[0] if len(outputs) == 1 else outputs
    )


# What a run records: names (`*` = any text, <...> = a name taken from the user's objects).
# The README table is generated from this; a test checks real runs against it.
RECORDED = {
    "params": {
        "epochs": "fit argument (Keras' default when not passed, as for all of these)",
        "initial_epoch": "fit argument",
        "shuffle": "fit argument",
        "class_weight": "fit argument",
        "validation_*": "fit arguments: split, steps, batch_size, freq",
        "max_queue_size": "Keras 2 fit argument",
        "workers": "Keras 2 fit argument",
        "use_multiprocessing": "Keras 2 fit argument",
        "batch_size": "as passed; 32 for arrays when not passed; a tf.data pipeline's own "
        "batch size; a PyDataset's `batch_size` attribute",
        "steps_per_epoch": "as passed, else the number of batches Keras found",
        "optimizer_name": "the optimizer class",
        "optimizer_*": "its config (learning_rate, beta_1, momentum, weight_decay...); a "
        "schedule as `optimizer_learning_rate` = class plus `optimizer_learning_rate_<key>`",
        "loss": "the compiled loss (names; `output: loss` for several outputs)",
        "metrics": "the compiled metrics",
        "weighted_metrics": "the compiled weighted metrics",
        "loss_weights": "as compiled",
        "total_params": "parameter count",
        "trainable_params": "trainable parameter count",
        "non_trainable_params": "non-trainable parameter count",
        "early_stopping_*": "a user EarlyStopping's monitor, patience, min_delta, baseline, "
        "restore_best_weights, start_from_epoch, mode",
    },
    "metrics": {
        "<logs key>": "every number in the epoch logs (`loss`, `accuracy`, `val_loss`...), "
        "step = epoch index (continuing from `initial_epoch`)",
        "learning_rate": "per epoch, when a schedule or a callback moves it",
        "batch_<logs key>": "with `log_every_n_steps=N`: batch logs every N batches, step = "
        "global batch",
        "eval_<logs key>": "`evaluate` after a recorded fit, on that fit's run, step = its "
        "last epoch",
        "stopped_epoch": "EarlyStopping: the epoch it stopped training",
        "best_epoch": "EarlyStopping: the best epoch",
        "best_<monitor>": "EarlyStopping: the best monitored value",
        "restored_epoch": "EarlyStopping: the epoch whose weights were restored",
    },
    "tags": {
        "keras.version": "the Keras version",
        "keras.backend": "tensorflow, torch or jax",
        "dataset.<context>.*": "array inputs (`train`, `validation`): digest, shape",
    },
    "artifacts": {
        "model/": "`model.keras` (weights only, with a warning, when Keras cannot serialise "
        "it), signature, input example, requirements",
        "model_summary.txt": "`model.summary()`",
        "datasets/<context>.json": "dataset fingerprints",
    },
}
