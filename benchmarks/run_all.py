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
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
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
    lines = [
        "| workload | plain (median) | added by autotrack | added by MLflow | MLflow / autotrack |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "plain_s" not in row:
            continue
        theirs = row.get("mlflow_added_s")
        ratio = row.get("ratio")
        lines.append(
            f"| {row['workload']} | {_ms(row['plain_s'])} | {_ms(row['autotrack_added_s'])} | "
            f"{_ms(theirs) if theirs is not None else '-'} | "
            f"{f'{ratio:,.0f}x' if ratio else '-'} |"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


if __name__ == "__main__":
    sys.exit(main())
