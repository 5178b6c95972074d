"""`autotrack ui` at scale: 10,000 runs (100 of them searches with 10 child runs each) and one
run with a 100,000-point metric history, all written through the tracking API.

    python benchmarks/bench_ui.py [--runs 10000] [--points 100000] [--repeat 5]

Measures the JSON API on its own, then, where Playwright and Chromium are installed, the time
to first paint of the runs view in headless Chromium: from navigation start to the first frame
after the table's rows are in the page (a `performance.mark` the page sets), and the same for
the run view with the 100,000-point chart (downsampled on the server).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


def build_store(root: str, runs: int, points: int) -> str:
    """Write the runs through the public API; returns the id of the long-history run."""
    import autotrack

    autotrack.set_tracking_uri(root)
    autotrack.set_experiment("bench")
    rng = random.Random(0)

    def one(name: str, parent: str | None = None) -> str:
        kind = rng.choice(["tree", "linear", "nn"])
        handle = autotrack.create_run(
            run_name=name, parent_run_id=parent, tags={"model_type": kind}
        )
        handle.log_params(
            {
                "learning_rate": 10 ** rng.uniform(-4, -1),
                "max_depth": rng.randint(2, 12),
                "n_estimators": rng.choice([100, 200, 500]),
                "solver": rng.choice(["adam", "sgd"]),
            }
        )
        handle.log_metrics({"accuracy": rng.random(), "rmse": rng.random(), "f1": rng.random()})
        handle.end()
        return handle.run_id

    searches = min(100, runs // 100)
    for i in range(searches):
        parent = one(f"search-{i}")
        for j in range(9):
            one(f"search-{i}-candidate-{j}", parent)
    for i in range(runs - searches * 10 - 1):
        one(f"run-{i}")
    with autotrack.start_run(run_name="long-history") as run:
        for step in range(points):
            run.log_metric("loss", 1 / (step + 1) + rng.random() * 0.01, step=step)
    autotrack.flush()
    return run.run_id


def _get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        response.read()
    return time.perf_counter() - started


def api_timings(base: str, run_id: str, repeat: int) -> dict[str, float]:
    """Median milliseconds per call. The `_uncached` ones change the question each time (a
    filter every run passes; one more point), so the server reads the store every time."""
    calls = {
        "experiments": lambda i: "/api/experiments",
        "runs_first_page": lambda i: "/api/runs?experiment_id=1&limit=100",
        "runs_uncached": lambda i: f"/api/runs?experiment_id=1&filter=attributes.start_time%3E{-i}",
        "runs_filtered_sorted": lambda i: (
            "/api/runs?experiment_id=1&sort=metrics.rmse"
            "&filter=metrics.accuracy%20%3E%200.5%20and%20tags.model_type%20%3D%20%27tree%27"
        ),
        "run": lambda i: f"/api/runs/{run_id}",
        "history_100k_to_1000": lambda i: f"/api/metric-history?run_id={run_id}&key=loss",
        "history_100k_uncached": lambda i: (
            f"/api/metric-history?run_id={run_id}&key=loss&max_points={1000 + i}"
        ),
    }
    return {
        name: statistics.median(_get(base + path(i)) for i in range(1, repeat + 1)) * 1000
        for name, path in calls.items()
    }


def _chromium():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return (sync_playwright, chromium) if Path(chromium).exists() else None


def _paint(browser, url: str, mark: str) -> float:
    """Milliseconds from navigation start to the page's `mark` (set after the first frame)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    deadline = time.monotonic() + 30
    while True:
        found = page.evaluate(f"performance.getEntriesByName({mark!r}).map(e => e.startTime)")
        if found or time.monotonic() > deadline:
            break
        page.wait_for_timeout(20)
    page.close()
    return found[0]


def paint_timings(cold_base: str, base: str, run_id: str, repeat: int) -> dict[str, float] | None:
    """First paint on a server that has read nothing yet (cold: the newest 100 rows), the
    complete table there (total known, every run read; a new filter, so nothing cached), then
    medians on a server that has read the store (what a page view after `autotrack ui` has
    started sees, and every later one)."""
    found = _chromium()
    if found is None:
        return None
    sync_playwright, chromium = found
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        _paint(browser, base + "#/runs", "autotrack:runs-painted")  # browser start-up
        cold = _paint(browser, cold_base + "#/runs", "autotrack:runs-painted")
        complete = _paint(browser, cold_base + "#/runs?filter=attributes.start_time>0",
                          "autotrack:runs-complete")  # fmt: skip
        warm = [_paint(browser, base + "#/runs", "autotrack:runs-painted") for _ in range(repeat)]
        chart = [
            _paint(browser, f"{base}#/run/{run_id}", "autotrack:run-painted") for _ in range(repeat)
        ]
        browser.close()
    return {
        "runs_view_first_paint_cold": cold,
        "runs_view_complete_cold": complete,
        "runs_view_first_paint": statistics.median(warm),
        "run_view_100k_chart_paint": statistics.median(chart),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from autotrack.ui.server import make_ui_server

    with tempfile.TemporaryDirectory(prefix="autotrack-bench-ui-") as tmp:
        started = time.perf_counter()
        run_id = build_store(tmp, args.runs, args.points)
        took = time.perf_counter() - started
        print(f"store: {args.runs} runs, {args.points} points in {took:.1f} s")
        server = make_ui_server(tmp, "127.0.0.1", 0)
        cold = make_ui_server(tmp, "127.0.0.1", 0, warm=False)
        for each in (server, cold):
            threading.Thread(target=each.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}/"
        try:
            paint = paint_timings(
                f"http://127.0.0.1:{cold.server_port}/", base, run_id, args.repeat
            )
            api = api_timings(base, run_id, args.repeat)
        finally:
            for each in (server, cold):
                each.shutdown()
                each.server_close()
    for name, ms in api.items():
        print(f"api {name}: {ms:.0f} ms")
    if paint is None:
        print("no Playwright/Chromium: first paint not measured")
    else:
        for name, ms in paint.items():
            print(f"{name}: {ms:.0f} ms")
    rows = [{"workload": f"ui api {k} ({args.runs} runs)", "median_ms": v} for k, v in api.items()]
    rows += [
        {"workload": f"ui {k} ({args.runs} runs)", "median_ms": v} for k, v in (paint or {}).items()
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ui.json").write_text(json.dumps(
        {"rows": rows, "runs": args.runs, "points": args.points, "machine": platform.platform()},
        indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
