"""Run every benchmark (one process each), then write the combined table to
benchmarks/results/latest.md and latest.json.

    python benchmarks/run_all.py [--only store,sklearn]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated benchmark names (bench_<name>.py)")
    parser.add_argument("--table-only", action="store_true", help="aggregate saved results")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    failed = []
    for script in [] if args.table_only else sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode:
            failed.append(name)
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.name == "latest.json":
            continue
        rows.extend(json.loads(path.read_text()).get("rows", []))
    table = render(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(table + f"\nMachine: {platform.platform()}\n")
    (RESULTS / "latest.json").write_text(json.dumps(rows, indent=2))
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


def render(rows: list[dict]) -> str:
    """One line per workload. Added time below the run-to-run noise shows as its measured
    own work on the caller's thread when the benchmark reports it; the ratio uses the larger
    of the two (never a noise-sized denominator)."""
    lines = [
        "| workload | plain (median) | added by autotrack | added by MLflow | MLflow / autotrack |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "plain_s" not in row:
            continue
        ours = _ours(row)
        theirs = row.get("mlflow_added_s")
        ratio = f"{theirs / max(ours, 1e-3):,.0f}x" if theirs else "-"
        lines.append(
            f"| {row['workload']} | {_ms(row['plain_s'])} | {_ms(ours)} | "
            f"{_ms(theirs) if theirs is not None else '-'} | {ratio} |"
        )
    return "\n".join(lines)


def _ours(row: dict) -> float:
    own = row.get("autotrack_own_work_s") or row.get("autotrack_added_thread_cpu_s") or 0.0
    return max(row.get("autotrack_added_s") or 0.0, own, 0.0)


def _ms(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} us"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


if __name__ == "__main__":
    sys.exit(main())
