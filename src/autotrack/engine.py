"""The policy for one patched call (`model.fit(X, y)` and friends).

1. Fast path: the integration is disabled, we are already inside a recorded call (an
   engine-wide ContextVar, so only the outermost call records), `exclusive` with a user run
   active, or the hooks do not record this call: call the original and return.
2. Open a managed run (no run active) or join the user's run, mark "inside a recorded call",
   run `hooks.before`. Failures here are contained: the call still runs, with the user's own
   arguments.
3. Call the original outside any try that swallows. A user exception is re-raised with a bare
   `raise` (same object, same traceback) after `hooks.on_error`, and the managed run ends
   FAILED (KILLED for Ctrl-C).
4. `hooks.after`, contained; end the managed run without waiting for deferred work.
5. Return the very object the framework returned.

Threads do not inherit contextvars, so while autologging is on the engine also carries the
caller's context into thread pools (`ThreadPoolExecutor.submit`, `multiprocessing`'s
`ThreadPool.apply_async`, which joblib's threading backend uses) and into threads started
during a recorded call: a search's folds stay inside the search's call.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from autotrack import safety, tracking
from autotrack.entities import RunStatus
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget

_RECORDING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "autotrack_inside_recorded_call", default=False
)
_tagged_runs: set[tuple[str, str]] = set()  # (run_id, integration): user runs already tagged


def recording() -> bool:
    """True inside a recorded call (nested patched calls take the fast path)."""
    return _RECORDING.get()


@contextmanager
def suppressed() -> Iterator[None]:
    """Run a block as if inside a recorded call: patched calls in it record nothing.

    For autotrack's own work that calls framework functions (e.g. computing metrics).
    """
    token = _RECORDING.set(True)
    try:
        yield
    finally:
        _RECORDING.reset(token)


class Live:
    """What the wrappers of one integration read on every call; swapped by `autolog()`.

    `config is None` means the integration is off: its wrappers pass calls straight through.
    """

    __slots__ = ("config", "integration", "name")

    def __init__(self, integration: Integration) -> None:
        self.integration = integration
        self.name = integration.name
        self.config: CommonConfig | None = None


def run_tags(
    integration: str, framework: str, version: str, config: CommonConfig
) -> dict[str, str]:
    """Tags every autologged run carries."""
    tags = {
        "autotrack.integration": integration,
        "autotrack.framework": framework,
        "autotrack.framework_version": version,
    }
    for key, value in (config.extra_tags or {}).items():
        tags[str(key)] = str(value)
    return tags


def make_wrapper(
    live: Live, target: PatchTarget, framework: str, framework_version: str
) -> Callable[[Any, Any, tuple, dict], Any]:
    """The wrapt wrapper for one patch target. Its first lines are the fast path."""
    hooks = target.hooks

    def autotrack_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        config = live.config
        if config is None or config.disable or _RECORDING.get():
            return wrapped(*args, **kwargs)
        active = tracking.active_run()
        if active is not None and config.exclusive:
            return wrapped(*args, **kwargs)
        call = Call(
            live.integration, target, instance, args, dict(kwargs), config, active, False, wrapped
        )
        with safety.contained("records", live.name, config.silent) as guard:
            records = hooks.records(call)
        if guard.failed or not records:
            return wrapped(*args, **kwargs)
        tags = run_tags(live.name, framework, framework_version, config)
        return _record(live.name, hooks, call, wrapped, args, kwargs, tags)

    return autotrack_wrapper


def _record(
    name: str, hooks: Hooks, call: Call, wrapped: Any, args: tuple, kwargs: dict, tags: dict
) -> Any:
    silent = call.config.silent
    token = _RECORDING.set(True)
    try:
        try:
            prepared = _prepare(name, hooks, call, tags)
        except BaseException:  # strict mode re-raised our own error: never leave a run open
            _end_managed(call, RunStatus.FAILED, name, silent, quiet=True)
            raise
        if not prepared:
            call.args, call.kwargs = args, kwargs  # the user's own arguments, untouched
        try:
            result = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            _after_error(name, hooks, call, exc)
            raise
        _finish(name, hooks, call, result, prepared)
        return result
    finally:
        _RECORDING.reset(token)


def _prepare(name: str, hooks: Hooks, call: Call, tags: dict[str, str]) -> bool:
    """Open or join the run and run `before`; False if the call must run as the user wrote it."""
    silent = call.config.silent
    with safety.contained("start_run", name, silent) as guard:
        if call.run is not None:
            _tag_user_run(call.run, name, tags)
        elif hooks.opens_run:
            call.run = tracking.start_run(run_name=hooks.run_name(call), tags=tags)
            call.managed = True
    if guard.failed:
        return False
    with safety.contained("before", name, silent, run=call.run) as guard:
        hooks.before(call)
    return not guard.failed


def _tag_user_run(run: Any, name: str, tags: dict[str, str]) -> None:
    """The user's own run gets the same tags, once per run and integration."""
    key = (run.run_id, name)
    if key in _tagged_runs:
        return
    run.set_tags(tags)
    if len(_tagged_runs) > 10_000:
        _tagged_runs.clear()
    _tagged_runs.add(key)


def _after_error(name: str, hooks: Hooks, call: Call, exc: BaseException) -> None:
    """The user's call raised: tell the hooks, end the managed run. Never raises, even in
    strict mode: the user's exception is the one that must come out."""
    try:
        hooks.on_error(call, exc)
    except Exception as error:
        safety.report("on_error", error, name, call.config.silent, call.run)
    status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
    _end_managed(call, status, name, call.config.silent, quiet=True)


def _finish(name: str, hooks: Hooks, call: Call, result: Any, prepared: bool) -> None:
    status = RunStatus.FINISHED
    try:
        if prepared:
            with safety.contained("after", name, call.config.silent, run=call.run):
                hooks.after(call, result)
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    except BaseException:
        status = RunStatus.FAILED
        raise
    finally:
        _end_managed(call, status, name, call.config.silent, quiet=status is not RunStatus.FINISHED)


def _end_managed(
    call: Call, status: RunStatus, name: str, silent: bool, quiet: bool = False
) -> None:
    """End the run the engine opened; `quiet` keeps an error here from replacing another."""
    if not call.managed or call.run is None:
        return
    try:
        call.run.end(status, wait=False)  # an active run also leaves the stack
    except Exception as error:
        if safety.strict() and not quiet:
            raise
        safety.report("end_run", error, name, silent)


# -- carrying the caller's context into threads --------------------------------------------
def _in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` bound to a copy of the current context (one copy per task: a Context can only be
    entered by one thread at a time)."""
    context = contextvars.copy_context()

    def run_in_callers_context(*args: Any, **kwargs: Any) -> Any:
        return context.run(fn, *args, **kwargs)

    return run_in_callers_context


def _carry_into_task(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """`submit(fn, ...)` / `apply_async(func, ...)`: the task runs in its submitter's context."""
    if args:
        args = (_in_context(args[0]), *args[1:])
    elif "func" in kwargs:
        kwargs = {**kwargs, "func": _in_context(kwargs["func"])}
    return wrapped(*args, **kwargs)


def _carry_into_thread(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """`Thread.start()` during a recorded call: the thread runs inside that call's context."""
    if (
        _RECORDING.get()
        and isinstance(instance, threading.Thread)
        and not instance.name.startswith("autotrack-")  # our own long-lived workers
    ):
        instance.run = _in_context(instance.run)  # type: ignore[method-assign]
    return wrapped(*args, **kwargs)


def context_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    """(owner, attribute, wrapper) for the thread pools whose tasks carry the caller's context."""
    import concurrent.futures
    import multiprocessing.pool

    return [
        (concurrent.futures.ThreadPoolExecutor, "submit", _carry_into_task),
        (multiprocessing.pool.ThreadPool, "apply_async", _carry_into_task),
        (threading.Thread, "start", _carry_into_thread),
    ]
