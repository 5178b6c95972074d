"""The `autotrack` command: list and show runs, check autologging status, serve the UI,
and move runs to an MLflow server."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from autotrack import tracking
from autotrack.entities import Run
from autotrack.search import FilterError

_STATUS_STYLE = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "yellow"}


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: Run) -> str:
    if run.duration_ms is None:
        return "-"
    seconds = run.duration_ms / 1000
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _common_keys(values: list[dict], limit: int) -> list[str]:
    """Keys most runs share, most frequent first, so the table shows what differs."""
    counts: dict[str, int] = {}
    for item in values:
        for key in item:
            if not key.startswith("autotrack."):
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))[:limit]


def _console() -> Any:
    """A terminal-sized console; 200 columns when writing to a file or a log."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    order = [args.sort] if args.sort else None
    experiments = [args.experiment] if args.experiment else None
    runs = tracking.search_runs(experiments, args.filter or "", order, args.limit)
    console = _console()
    if not runs:
        console.print(f"No runs in {tracking.get_tracking_uri()}")
        return 0
    runs = _children_under_parents(runs)
    top = [r for r in runs if r.parent_run_id is None] or runs
    param_keys = _common_keys([r.params for r in top], args.params)
    metric_keys = _common_keys([r.metrics for r in top], args.metrics)
    table = Table(title=f"Runs in {tracking.get_tracking_uri()}", show_lines=False)
    for column, width in (("run id", 8), ("name", 16), ("status", 8), ("started", 19),
                          ("duration", 8), ("model", 10)):  # fmt: skip
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=width)
    for key in param_keys:
        table.add_column(key, style="magenta", no_wrap=True, overflow="ellipsis")
    for key in metric_keys:
        table.add_column(key, style="cyan", justify="right", no_wrap=True, overflow="ellipsis")
    for run in runs:
        style = _STATUS_STYLE.get(run.status.value, "")
        name = run.run_name if run.parent_run_id is None else f"└ {run.run_name}"
        table.add_row(
            run.run_id[:8],
            name,
            f"[{style}]{run.status.value}[/]",
            _time(run.start_time),
            _duration(run),
            run.tags.get("estimator_name", run.tags.get("autotrack.integration", "")),
            *(run.params.get(k, "") for k in param_keys),
            *(_number(run.metrics[k]) if k in run.metrics else "" for k in metric_keys),
        )
    console.print(table)
    return 0


def _children_under_parents(runs: list[Run]) -> list[Run]:
    """Keep the order of top-level runs, each followed by its listed children."""
    listed = {r.run_id for r in runs}
    children: dict[str, list[Run]] = {}
    for run in runs:
        if run.parent_run_id in listed:
            children.setdefault(run.parent_run_id, []).append(run)
    ordered: list[Run] = []
    for run in runs:
        if run.parent_run_id not in listed:
            ordered.append(run)
            ordered.extend(children.get(run.run_id, []))
    return ordered


def _resolve_run_id(prefix: str) -> str:
    if len(prefix) == 32:
        return prefix
    matches = [
        r.run_id for r in tracking.search_runs(max_results=100_000) if r.run_id.startswith(prefix)
    ]
    if len(matches) != 1:
        raise KeyError(f"{len(matches)} runs start with '{prefix}'; give more of the run id")
    return matches[0]


def cmd_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    run = tracking.get_run(_resolve_run_id(args.run_id))
    store = tracking.get_store()
    console = _console()
    console.print(f"[bold]{run.run_name}[/]  {run.run_id}")
    console.print(
        f"status [{_STATUS_STYLE.get(run.status.value, '')}]{run.status.value}[/]  "
        f"started {_time(run.start_time)}  ended {_time(run.end_time)}  "
        f"duration {_duration(run)}  experiment {run.experiment_id}"
    )
    if run.parent_run_id:
        console.print(f"parent run {run.parent_run_id}")
    for title, values in (("Params", run.params), ("Tags", run.tags)):
        table = Table(title=title, show_header=False)
        for key in sorted(values):
            table.add_row(key, values[key])
        if values:
            console.print(table)
    if run.metrics:
        counts: dict[str, int] = getattr(store, "metric_keys", lambda _: {})(run.run_id)
        table = Table(title="Metrics (latest value)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("points", justify="right")
        for key in sorted(run.metrics):
            table.add_row(key, _number(run.metrics[key]), str(counts.get(key, "")))
        console.print(table)
    files = _walk_artifacts(run.run_id)
    if files:
        console.print("[bold]Artifacts[/]")
        for path, size in files:
            console.print(f"  {path}  ({size} bytes)")
    children = tracking.search_runs(
        filter_string=f"attributes.parent_run_id = '{run.run_id}'", max_results=10_000
    )
    if children:
        console.print(f"[bold]Child runs[/] ({len(children)})")
        for child in children:
            console.print(f"  {child.run_id[:8]}  {child.run_name}  {child.status.value}")
    return 0


def _walk_artifacts(run_id: str, path: str = "") -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for info in tracking.list_artifacts(run_id, path):
        if info.is_dir:
            out.extend(_walk_artifacts(run_id, info.path))
        else:
            out.append((info.path, info.file_size or 0))
    return out


def cmd_status(args: argparse.Namespace) -> int:
    from autotrack.autolog import autolog_all, format_status

    if args.enable:
        autolog_all()

    print(format_status())
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from autotrack.ui.server import serve

    serve(tracking.get_tracking_uri(), host=args.host, port=args.port)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from autotrack.sync import sync

    report = sync(args.spill_uri)
    print(report)
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from autotrack.sync import export_runs

    report = export_runs(tracking.get_tracking_uri(), args.to, filter_string=args.filter or "")
    print(report)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrack", description=__doc__)
    parser.add_argument(
        "--store",
        help="tracking URI or store folder (default: $AUTOTRACK_TRACKING_URI or ./autotrack-runs)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    runs = commands.add_parser("runs", help="list runs as a table")
    runs.add_argument("--experiment", help="only this experiment")
    runs.add_argument("--filter", help="e.g. \"metrics.accuracy > 0.9 and params.C = '1'\"")
    runs.add_argument("--sort", help="e.g. 'metrics.rmse ASC' (default: newest first)")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--params", type=int, default=4, help="how many param columns")
    runs.add_argument("--metrics", type=int, default=4, help="how many metric columns")
    runs.set_defaults(handler=cmd_runs)

    show = commands.add_parser("show", help="show one run")
    show.add_argument("run_id", help="a run id or a unique prefix of one")
    show.set_defaults(handler=cmd_show)

    status = commands.add_parser("status", help="which integrations and patch points are active")
    status.add_argument("--enable", action="store_true", help="call autotrack.autolog() first")
    status.set_defaults(handler=cmd_status)

    ui = commands.add_parser("ui", help="browse runs in a local web page")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=cmd_ui)

    sync = commands.add_parser("sync", help="push runs spilled while an MLflow server was down")
    sync.add_argument("--spill-uri", help="spill store folder (default: the configured one)")
    sync.set_defaults(handler=cmd_sync)

    export = commands.add_parser("export", help="copy runs from this store into MLflow")
    export.add_argument("--to", required=True, help="MLflow tracking URI, e.g. http://host:5000")
    export.add_argument("--filter", help="only runs matching this filter")
    export.set_defaults(handler=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.store:
        tracking.set_tracking_uri(args.store)
    try:
        return int(args.handler(args) or 0)
    except (FilterError, KeyError, ValueError) as exc:
        print(f"autotrack: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
