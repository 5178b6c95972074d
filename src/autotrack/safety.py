"""Error containment: autotrack's own failures never reach the user's training code.

Every piece of autotrack that runs inside a user's call (hooks, the store, plots, model files,
injected framework callbacks, post-import hooks) runs under `contained(stage)`. An exception
there becomes one warning per (integration, stage) per process, naming what was not recorded,
and is written onto the run it happened in (tag `autotrack.errors` plus the artifact
`autotrack_diagnostics.json`), so a half-recorded run says why.

`AUTOTRACK_STRICT=1` turns containment off: the test suite runs with it, so integration bugs
are not hidden by the safety net.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import platform
import threading
import time
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

STRICT_ENV = "AUTOTRACK_STRICT"
ERRORS_TAG = "autotrack.errors"
DIAGNOSTICS_FILE = "autotrack_diagnostics.json"
_MAX_RUNS_REMEMBERED = 64
_MAX_ERRORS_PER_RUN = 20

logger = logging.getLogger("autotrack")
T = TypeVar("T")

#: What a failure at each stage costs the user, for the warning text.
LOST_AT_STAGE = {
    "start_run": "the whole call (no run could be opened)",
    "records": "the whole call",
    "before": "the call's params and tags, and what is recorded after it",
    "after": "the call's metrics, plots or model",
    "on_error": "details of the call's failure",
    "end_run": "the run's final status",
    "callback": "metrics streamed during training",
    "background": "deferred work (plots, model files)",
    "import": "autologging of this framework (patching at import failed)",
    "patch": "calls to a method that could not be patched",
    "targets": "autologging of this framework (its patch points could not be listed)",
    "extras": "this framework's extension points",
    "version": "the framework version check",
}


class AutotrackWarning(UserWarning):
    """The category of every warning autotrack emits: filter them all in one line."""


def strict() -> bool:
    """True when `AUTOTRACK_STRICT` asks for autotrack's own errors to be raised."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_warned: set[Hashable] = set()
_warned_lock = threading.Lock()


def warn_once(key: Hashable, message: str, *, stacklevel: int = 2) -> bool:
    """Emit `message` the first time `key` is seen in this process; True if it was emitted."""
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    warnings.warn(message, AutotrackWarning, stacklevel=stacklevel + 1)
    return True


def reset_warnings() -> None:
    """Forget which warnings were shown (for tests)."""
    with _warned_lock:
        _warned.clear()


def describe_failure(stage: str, exc: BaseException, integration: str | None) -> str:
    """The one-line warning for a contained failure: what failed, and what was not recorded."""
    who = f"autotrack ({integration})" if integration else "autotrack"
    lost = LOST_AT_STAGE.get(stage.split(":")[0], "part of the recording")
    return (
        f"{who}: {stage} failed with {type(exc).__name__}: {exc}. Not recorded: {lost}. "
        "Your code was not affected. Shown once per process; set AUTOTRACK_STRICT=1 to raise."
    )


def report(
    stage: str,
    exc: BaseException,
    integration: str | None = None,
    silent: bool = False,
    run: Any = None,
) -> None:
    """Record a contained failure: on the run (if any), in the log, and as one warning."""
    logger.debug("autotrack %s failed", stage, exc_info=exc)
    if run is not None:
        record_error(run, stage, exc, integration)
    if not silent:
        warn_once((integration, stage), describe_failure(stage, exc, integration), stacklevel=3)


class contained:
    """Context manager: an `Exception` inside is reported and swallowed (raised when strict).

    `KeyboardInterrupt`/`SystemExit` always pass through. `failed` tells the caller whether the
    block was cut short, so it can fall back (e.g. call the original with the user's arguments).
    """

    __slots__ = ("error", "integration", "run", "silent", "stage")

    def __init__(
        self, stage: str, integration: str | None = None, silent: bool = False, run: Any = None
    ) -> None:
        self.stage = stage
        self.integration = integration
        self.silent = silent
        self.run = run
        self.error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def __enter__(self) -> contained:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: Any
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self.error = exc
        if strict():
            if self.run is not None:
                record_error(self.run, self.stage, exc, self.integration)
            return False
        report(self.stage, exc, self.integration, self.silent, self.run)
        return True


# -- errors recorded on the run -----------------------------------------------------------
_run_errors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_run_errors_lock = threading.Lock()


def error_entry(stage: str, exc: BaseException, integration: str | None) -> dict[str, Any]:
    """A JSON-ready description of one failure (the last frames of its traceback)."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "stage": stage,
        "integration": integration,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc)[:2000],
        "time": int(time.time() * 1000),
        "traceback": "".join(frames[-6:])[-6000:],
    }


def errors_summary(errors: Iterable[dict[str, Any]]) -> str:
    """Tag value: the count and, per failure, where it happened and its type."""
    errors = list(errors)
    parts = [f"{e['stage']}: {e['type'].rsplit('.', 1)[-1]}: {e['message'][:80]}" for e in errors]
    return f"{len(errors)} error(s): " + "; ".join(parts)[:4000]


def record_error(run: Any, stage: str, exc: BaseException, integration: str | None = None) -> None:
    """Tag the run with a summary of autotrack's errors and write the diagnostics artifact.

    Never raises: the store itself may be what is failing.
    """
    try:
        run_id = run.run_id
        with _run_errors_lock:
            errors = _run_errors.setdefault(run_id, [])
            _run_errors.move_to_end(run_id)
            while len(_run_errors) > _MAX_RUNS_REMEMBERED:
                _run_errors.popitem(last=False)
            if len(errors) < _MAX_ERRORS_PER_RUN:
                errors.append(error_entry(stage, exc, integration))
            snapshot = list(errors)
        run.set_tag(ERRORS_TAG, errors_summary(snapshot))
        run.log_dict(
            {"errors": snapshot, "python": platform.python_version(), "strict": strict()},
            DIAGNOSTICS_FILE,
        )
    except Exception as failure:  # the store may be the thing that is broken
        logger.debug("autotrack could not record an error on the run", exc_info=failure)


# -- injected framework callbacks ------------------------------------------------------------
_GUARDED = "__autotrack_guarded__"


_Context = tuple[str | None, bool, Any]  # (integration name, silent, run)


def _call_context(owner: Any, defaults: _Context) -> _Context:
    """(integration, silent, run) for a callback: from its `call` (a base.Call) if it has one."""
    call = getattr(owner, "call", None) if owner is not None else None
    config = getattr(call, "config", None)
    if call is None or config is None or not hasattr(call, "integration"):
        return defaults
    return call.integration.name, bool(config.silent), call.run


def _guard(
    fn: Callable[..., Any],
    *,
    is_method: bool,
    passthrough: bool,
    defaults: _Context,
    owner: Any = None,
) -> Callable[..., Any]:
    """`fn` with its body contained; on failure it returns None (or its first argument)."""
    stage_name = getattr(fn, "__name__", "callback")

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            integration, silent, run = _call_context(
                args[0] if is_method and args else owner, defaults
            )
            if strict():
                raise
            report(f"callback:{stage_name}", exc, integration, silent, run)
            if not passthrough:
                return None
            first = 1 if is_method else 0
            if len(args) > first:
                return args[first]
            return next(iter(kwargs.values()), None)  # e.g. after_training(model=...)

    setattr(guarded, _GUARDED, True)
    return guarded


def safe_callback_methods(
    obj_or_cls: T,
    *,
    integration: str | None = None,
    silent: bool = False,
    run: Any = None,
    passthrough: Iterable[str] = (),
) -> T:
    """Contain every public method (and `__call__`) of a callback autotrack injects.

    An exception in a callback surfaces inside the framework's training loop, so it would end
    the user's training. With this, it becomes one warning instead and the method returns None;
    methods named in `passthrough` return their first argument instead (XGBoost's
    `before_training(model)` must hand the model back).

    - a class (use as a decorator): its own methods are replaced in place;
    - a plain function (LightGBM callbacks): returns a contained copy (attributes kept);
    - an instance: its class's own methods are bound and set on the instance.
    A callback with a `call` attribute (the engine's `Call`) reports under that call's
    integration, honours its `silent` option and records the error on its run.
    """
    keep = set(passthrough)
    defaults = (integration, silent, run)
    if inspect.isfunction(obj_or_cls):
        if getattr(obj_or_cls, _GUARDED, False):
            return obj_or_cls
        name = obj_or_cls.__name__
        guarded = _guard(obj_or_cls, is_method=False, passthrough=name in keep, defaults=defaults)
        return guarded  # type: ignore[return-value]
    if isinstance(obj_or_cls, type):
        for name, value in list(vars(obj_or_cls).items()):
            if not _is_callback_method(name) or getattr(value, _GUARDED, False):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                inner = _guard(
                    value.__func__,
                    is_method=isinstance(value, classmethod),
                    passthrough=name in keep,
                    defaults=defaults,
                )
                setattr(obj_or_cls, name, type(value)(inner))
            elif inspect.isfunction(value):
                setattr(
                    obj_or_cls,
                    name,
                    _guard(value, is_method=True, passthrough=name in keep, defaults=defaults),
                )
        return obj_or_cls
    for name, value in list(vars(type(obj_or_cls)).items()):
        if _is_callback_method(name) and name != "__call__" and inspect.isfunction(value):
            if getattr(value, _GUARDED, False):
                continue
            guarded = _guard(
                getattr(obj_or_cls, name),
                is_method=False,
                passthrough=name in keep,
                defaults=defaults,
                owner=obj_or_cls,
            )
            setattr(obj_or_cls, name, guarded)
    return obj_or_cls


def _is_callback_method(name: str) -> bool:
    return not name.startswith("_") or name == "__call__"
