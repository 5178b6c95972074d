"""What enabling sklearn autologging adds to the user's `autolog()` or `import sklearn` call
(issue 3: under 200 ms), each measured in fresh interpreters, median of `--rounds`.

    python benchmarks/bench_enable.py [--rounds 5]

Rows (ms):
- `autolog()` right after `import sklearn` (includes importing autotrack's sklearn module);
- `import sklearn` after `autolog()`, minus a plain `import sklearn`;
- `from sklearn.ensemble import RandomForestClassifier` after `autolog()`, minus the plain
  import (the post-import hook patching that module);
- for comparison, the previous eager design's cost: `all_estimators()` after `import sklearn`,
  which imports every sklearn module (what `autolog()` used to do).

On a loaded machine a plain `import sklearn` varies by hundreds of ms between interpreters, so
the differences above are noisy; each case also reports the time spent inside autotrack's
post-import hooks during the timed statement (measured in-process), the cost itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

_TIMED = """
import json, sys, time, tempfile
{setup}
hooked = [0.0, 0]
if "autotrack.autolog" in sys.modules:  # time the outermost _on_module calls (the hooks' work)
    import autotrack.autolog as engine
    on_module = engine._on_module
    def _timed(*args):
        hooked[1] += 1
        started = time.perf_counter()
        try:
            return on_module(*args)
        finally:
            hooked[1] -= 1
            if not hooked[1]:
                hooked[0] += time.perf_counter() - started
    engine._on_module = _timed
t = time.perf_counter()
{timed}
print(json.dumps([time.perf_counter() - t, hooked[0]]))
"""
_STORE = "import autotrack; autotrack.set_tracking_uri(tempfile.mkdtemp())"
_ENSEMBLE = "from sklearn.ensemble import RandomForestClassifier"
CASES = {
    "plain import sklearn": ("", "import sklearn"),
    "import sklearn after autolog()": (f"{_STORE}; autotrack.sklearn.autolog()", "import sklearn"),
    "autolog() after import sklearn": (f"import sklearn; {_STORE}", "autotrack.sklearn.autolog()"),
    "plain import sklearn.ensemble": ("import sklearn", _ENSEMBLE),
    "import sklearn.ensemble after autolog()": (
        f"import sklearn; {_STORE}; autotrack.sklearn.autolog()",
        _ENSEMBLE,
    ),
    "all_estimators() after import sklearn (old eager enable)": (
        "import sklearn; from sklearn.utils import all_estimators",
        "all_estimators()",
    ),
}


def time_once(setup: str, timed: str) -> tuple[float, float]:
    """Seconds the `timed` statement takes in a fresh interpreter after `setup`, and the
    seconds of it spent in autotrack's post-import hooks."""
    source = _TIMED.format(setup=setup, timed=timed)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    total, hooked = json.loads(done.stdout.strip().splitlines()[-1])
    return total, hooked


def measure(rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median ms per case (and in hooks); rounds interleave the cases so that machine load
    hits them alike."""
    totals: dict[str, list[float]] = {name: [] for name in CASES}
    hooks: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, (setup, timed) in CASES.items():
            total, hooked = time_once(setup, timed)
            totals[name].append(total * 1e3)
            hooks[name].append(hooked * 1e3)
    median = statistics.median
    return (
        {name: median(values) for name, values in totals.items()},
        {name: median(values) for name, values in hooks.items()},
    )


def enable_rows(ms: dict[str, float]) -> dict[str, float]:
    """What the user pays for autologging, from the raw medians."""
    return {
        "autolog() after import sklearn": ms["autolog() after import sklearn"],
        "added to import sklearn by autolog() before it": ms["import sklearn after autolog()"]
        - ms["plain import sklearn"],
        "added to importing sklearn.ensemble (patching it)": ms[
            "import sklearn.ensemble after autolog()"
        ]
        - ms["plain import sklearn.ensemble"],
        "previous eager enable: all_estimators() alone": ms[
            "all_estimators() after import sklearn (old eager enable)"
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw, hooked = measure(args.rounds)
    rows = enable_rows(raw)
    print(f"sklearn autolog enable cost (ms, median of {args.rounds} fresh interpreters):")
    for name, value in raw.items():
        print(f"  raw: {name:<58} {value:8.1f}   (in autotrack hooks {hooked[name]:6.1f})")
    for name, value in rows.items():
        print(f"  {name:<63} {value:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "enable.json").write_text(
        json.dumps(
            {
                "enable_ms": rows,
                "raw_ms": raw,
                "in_hooks_ms": hooked,
                "python": platform.python_version(),
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
