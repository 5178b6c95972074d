"""Engine overhead per patched call, and the cost of enabling autologging.

    python benchmarks/bench_engine.py [--calls 200000]

Prints microseconds per call (median of 5 rounds, minus an unpatched call's cost):
- fast path: a nested call inside a recorded one (each tree of a forest), an `exclusive`
  integration while the user's run is active, a disabled integration whose wrapper is
  still installed;
- a recorded call whose hooks log nothing, inside the user's run (the engine's own work);
- a recorded call that opens and ends a managed run (adds the store's run insert/update);
- patching (and reverting) `fit` on every scikit-learn estimator, when sklearn is installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def per_call_us(fn: Callable[[], Any], calls: int, rounds: int = 5) -> float:
    """Median over rounds of the time per call, in microseconds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(times)


def bench_framework() -> types.ModuleType:
    """A tiny 'framework' registered as a module, so autolog patches it at once."""
    module = types.ModuleType("bench_fw")
    module.__version__ = "1.0"

    class Estimator:
        def fit(self, X, y=None):
            return self

    Estimator.__module__ = "bench_fw"
    module.Estimator = Estimator
    sys.modules["bench_fw"] = module
    return module


def toy_integration(module: types.ModuleType):
    from autotrack.autolog import make_autolog
    from autotrack.integrations import IntegrationInfo
    from autotrack.integrations.base import Hooks, Integration, PatchTarget

    class Silent(Hooks):
        """Hooks that log nothing: what remains is the engine's own cost."""

    class Bench(Integration):
        name = "bench"

        def targets(self, imported):
            return [PatchTarget(imported.Estimator, "fit", Silent())]

    info = IntegrationInfo("bench", "bench", ("bench_fw",), "bench-fw", ">=1", ())
    return make_autolog(Bench(), info)


def engine_rows(calls: int) -> dict[str, float]:
    import autotrack
    from autotrack import engine

    module = bench_framework()
    autolog = toy_integration(module)
    model = module.Estimator()
    plain = per_call_us(lambda: model.fit(1), calls)

    autolog()
    with engine.suppressed():
        nested = per_call_us(lambda: model.fit(1), calls)
    autolog(exclusive=True)
    with autotrack.start_run():
        exclusive = per_call_us(lambda: model.fit(1), calls)
    autolog()
    with autotrack.start_run():
        recorded = per_call_us(lambda: model.fit(1), max(calls // 10, 1000))
    managed = per_call_us(lambda: model.fit(1), 200, rounds=3)

    from autotrack.autolog import _entries

    _entries["bench"].live.config = None  # a wrapper left installed while switched off
    disabled = per_call_us(lambda: model.fit(1), calls)
    autolog(disable=True)
    return {
        "unpatched call": plain,
        "fast path: nested inside a recorded call": nested - plain,
        "fast path: exclusive while the user's run is active": exclusive - plain,
        "fast path: disabled integration, wrapper still installed": disabled - plain,
        "recorded call, hooks log nothing (inside the user's run)": recorded - plain,
        "recorded call opening and ending a managed run": managed - plain,
    }


def sklearn_patch_rows() -> dict[str, float]:
    """Engine cost of patching `fit` on every estimator class that defines it (ms)."""
    try:
        started = time.perf_counter()
        from sklearn.utils import all_estimators

        classes = [cls for _, cls in all_estimators() if "fit" in vars(cls)]
        listing = time.perf_counter() - started
    except ImportError:
        return {}
    from autotrack import engine
    from autotrack.integrations.base import Hooks, Integration, PatchTarget
    from autotrack.patching import PatchSet

    class Probe(Integration):
        name = "probe"

    live = engine.Live(Probe())
    hooks = Hooks()
    patch_ms, revert_ms = [], []
    for _ in range(5):
        started = time.perf_counter()
        patches = PatchSet()
        for cls in classes:
            wrapper = engine.make_wrapper(live, PatchTarget(cls, "fit", hooks), "sklearn", "x")
            patches.add(cls, "fit", wrapper)
        patch_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        patches.revert_all()
        revert_ms.append((time.perf_counter() - started) * 1e3)
    n = len(classes)
    return {
        f"listing sklearn estimators (all_estimators: {n} define fit), ms": listing * 1e3,
        f"patching fit on {n} sklearn classes (median of 5), ms": statistics.median(patch_ms),
        "reverting them (median of 5), ms": statistics.median(revert_ms),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()

    import autotrack

    with tempfile.TemporaryDirectory() as store:
        autotrack.set_tracking_uri(store)
        rows = engine_rows(args.calls)
        autotrack.flush()
    print("engine overhead per call (microseconds, added to an unpatched call):")
    for name, value in rows.items():
        print(f"  {name:<60} {value:8.2f} us")
    patch_rows = sklearn_patch_rows()
    for name, value in patch_rows.items():
        print(f"  {name:<60} {value:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(
        json.dumps(
            {
                "rows": [],
                "engine_us_per_call": rows,
                "enable_cost": patch_rows,
                "python": platform.python_version(),
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
