"""One background worker for deferred work (plots, model files, dataset hashes), so that the
user's training call returns before that work is done. FIFO: a run's finish task, queued after
its deferred work, runs after it."""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

_tasks: queue.Queue[tuple[Callable[..., Any], tuple, dict, threading.Event | None]] = queue.Queue()
_worker: threading.Thread | None = None
_start_lock = threading.Lock()
_errors: list[BaseException] = []


def submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run `fn(*args, **kwargs)` on the worker; its errors are contained and reported."""
    _ensure_worker()
    _tasks.put((fn, args, kwargs, None))


def drain(timeout: float | None = None) -> bool:
    """Wait until everything submitted so far has run. False on timeout."""
    if _worker is None or threading.current_thread() is _worker:
        return True
    done = threading.Event()
    _tasks.put((_noop, (), {}, done))
    finished = done.wait(timeout)
    if os.environ.get("AUTOTRACK_STRICT") == "1" and _errors:
        error = _errors.pop(0)
        _errors.clear()
        raise error
    return finished


def on_worker_thread() -> bool:
    return _worker is not None and threading.current_thread() is _worker


def _noop() -> None:
    pass


def _ensure_worker() -> None:
    global _worker
    if _worker is not None:
        return
    with _start_lock:
        if _worker is None:
            _worker = threading.Thread(target=_loop, name="autotrack-background", daemon=True)
            _worker.start()


def _loop() -> None:
    while True:
        fn, args, kwargs, done = _tasks.get()
        try:
            _run_quietly(fn, args, kwargs)
        except Exception as exc:
            _report(fn, exc)
        finally:
            if done is not None:
                done.set()


def _run_quietly(fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Framework calls made by deferred work (e.g. metrics for a plot) must not record."""
    engine = sys.modules.get("autotrack.engine")
    if engine is None:
        fn(*args, **kwargs)
        return
    with engine.suppressed():
        fn(*args, **kwargs)


def _report(fn: Callable[..., Any], exc: Exception) -> None:
    if os.environ.get("AUTOTRACK_STRICT") == "1":
        _errors.append(exc)
        return
    try:
        from autotrack.safety import warn_once

        name = getattr(fn, "__qualname__", repr(fn))
        warn_once(f"background:{name}", f"autotrack could not finish {name}: {exc!r}")
    except Exception:
        warnings.warn(f"autotrack background task failed: {exc!r}", stacklevel=1)


atexit.register(drain, 60.0)
