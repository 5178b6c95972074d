"""PyTorch: the plain-loop overhead on a small CPU MLP (batch 128), and one Lightning fit side
by side with `mlflow.pytorch.autolog()` (which records nothing for plain loops).

    python benchmarks/bench_pytorch.py [--quick]

Plain, autotrack and MLflow take turns (the machine may be shared) and the medians compare
CPU time (this process's threads and its children), wall time kept alongside; one torch
thread. Results: benchmarks/results/pytorch.json.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import harness
import torch
from torch import nn

import autotrack

warnings.filterwarnings("ignore")
FEATURES, HIDDEN, BATCH = 32, 64, 128


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 1),
    )


def data(rows: int) -> torch.utils.data.TensorDataset:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(rows, FEATURES, generator=generator)
    return torch.utils.data.TensorDataset(X, X[:, :4].sum(1, keepdim=True))


# -- the plain loop -------------------------------------------------------------------------------
class Loop:
    """A user's loop: train pass, LR scheduler, validation pass."""

    def __init__(self, rows: int = 8192, device: str = "cpu") -> None:
        torch.manual_seed(0)
        self.device = device
        self.train = torch.utils.data.DataLoader(data(rows), batch_size=BATCH, shuffle=True)
        self.val = torch.utils.data.DataLoader(data(1024), batch_size=256)
        self.model = mlp().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 10, 0.5)
        self.criterion = nn.MSELoss()

    def epoch(self) -> None:
        self.model.train()
        for xb, yb in self.train:
            xb, yb = xb.to(self.device), yb.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        self.model.eval()
        with torch.no_grad():
            for xb, yb in self.val:
                self.criterion(self.model(xb.to(self.device)), yb.to(self.device))

    def timed(self, epochs: int) -> float:
        started = time.perf_counter()
        for _ in range(epochs):
            self.epoch()
        return (time.perf_counter() - started) / epochs


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds; CPU counts every thread of this process and its finished children
    (MLflow infers requirements in a subprocess), and is what a shared machine cannot inflate."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + children.ru_utime + children.ru_stime


def interleaved(
    fn: Callable[[], Any],
    variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]]],
    repeat: int,
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) of `fn` under each variant, the variants taking turns; `enter` runs
    untimed before each timed call (switching autolog on, a warm-up), `leave` after it."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, (enter, leave) in variants.items():
            enter()
            wall, cpu = clock()
            fn()
            wall_end, cpu_end = clock()
            leave()
            samples[name].append((wall_end - wall, cpu_end - cpu))
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


def nothing() -> None:
    pass


def mlflow_switch(flavor_options: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    import mlflow

    return (
        lambda: mlflow.pytorch.autolog(**flavor_options),
        lambda: mlflow.pytorch.autolog(disable=True),
    )


def row_from(workload: str, times: dict[str, tuple[float, float]], **extra: Any) -> dict[str, Any]:
    """A harness row from CPU medians (wall medians kept alongside)."""
    plain = times["plain"][1]
    ours = max(times["autotrack"][1] - plain, 0.0)
    theirs = max(times["mlflow"][1] - plain, 0.0) if "mlflow" in times else None
    row = {
        "workload": workload,
        "plain_s": plain,
        "autotrack_added_s": ours,
        "mlflow_added_s": theirs,
        "ratio": theirs / max(ours, 1e-4) if theirs else None,
        "wall_s": {name: wall for name, (wall, _) in times.items()},
        **extra,
    }
    harness.print_rows([row])
    return row


def step_overhead(repeat: int, steps: int = 200, device: str = "cpu") -> dict[str, Any]:
    """The training step alone (batches made beforehand): the issue's "added time per step on
    a small CPU MLP (batch 128)". Every step is timed, in blocks that alternate plain and
    autologged; the lower quartile of the step times compares them (on a shared machine the
    median and the mean carry other processes' time slices)."""
    loop = Loop(device=device)
    batches = [tuple(t.to(device) for t in batch) for batch in loop.train][:64]
    sync = torch.cuda.synchronize if device == "cuda" else nothing

    def block(count: int) -> list[float]:
        times = []
        for index in range(count):
            xb, yb = batches[index % len(batches)]
            started = time.perf_counter()
            loop.optimizer.zero_grad()
            loop.criterion(loop.model(xb), yb).backward()
            loop.optimizer.step()
            sync()
            times.append(time.perf_counter() - started)
        return times

    block(steps)  # warm-up
    samples: dict[str, list[float]] = {"plain": [], "autotrack": []}
    for _ in range(repeat):
        samples["plain"] += block(steps)
        autotrack.pytorch.autolog()
        block(8)  # opens the run and finds the model
        samples["autotrack"] += block(steps)
        autotrack.pytorch.autolog(disable=True)
    quartile = {name: statistics.quantiles(got, n=4)[0] for name, got in samples.items()}
    median = {name: statistics.median(got) for name, got in samples.items()}
    plain, ours = quartile["plain"], quartile["autotrack"]
    row = {
        "workload": f"plain loop: one training step, MLP {FEATURES}-{HIDDEN}-{HIDDEN}-1, "
        f"batch {BATCH}, {device}",
        "plain_s": plain,
        "autotrack_added_s": max(ours - plain, 0.0),
        "mlflow_added_s": None,
        "ratio": None,
        "added_share": (ours - plain) / plain,
        "added_us_per_step": (ours - plain) * 1e6,
        "median_s": median,
        "steps_timed": len(samples["plain"]),
    }
    harness.print_rows([row])
    print(
        f"  training step: {row['added_share'] * 100:+.2f}% ({row['added_us_per_step']:+.1f} us"
        f" over {plain * 1e6:.0f} us, lower quartiles of {row['steps_timed']} steps each;"
        f" medians {median['plain'] * 1e6:.0f} / {median['autotrack'] * 1e6:.0f} us)"
    )
    return row


def loop_overhead(repeat: int, epochs: int) -> dict[str, Any]:
    """Epoch time plain and autologged; the added share of a step and the µs per step."""
    loop = Loop()
    steps = len(loop.train)
    loop.timed(2)  # warm-up

    def on() -> None:
        autotrack.pytorch.autolog()
        loop.timed(1)  # opens the run and finds the model (the first steps), untimed

    variants = {
        "plain": (nothing, nothing),
        "autotrack": (on, lambda: autotrack.pytorch.autolog(disable=True)),
    }
    if harness.mlflow_available():
        variants["mlflow"] = mlflow_switch({})  # records nothing for a plain loop
    times = interleaved(lambda: loop.timed(epochs), variants, repeat)
    autotrack.flush()
    runs = autotrack.search_runs()
    plain, ours = times["plain"][1], times["autotrack"][1]
    row = row_from(
        f"plain loop: one epoch ({steps} steps, DataLoader, scheduler, validation)",
        times,
        steps_per_epoch=steps,
        added_share=(ours - plain) / plain,
        added_us_per_step=(ours - plain) / steps * 1e6,
        runs_recorded=len(runs),
        metrics_recorded=sorted(runs[0].metrics) if runs else [],
    )
    print(
        f"  plain loop: {row['added_share'] * 100:+.2f}% of a step "
        f"({row['added_us_per_step']:+.1f} us/step over {plain / steps * 1e6:.0f} us/step)"
    )
    return row


# -- Lightning ------------------------------------------------------------------------------------
def lightning_fit_fn(root: str, epochs: int):
    import lightning as L

    class Regressor(L.LightningModule):
        def __init__(self, lr: float = 1e-3) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = mlp()

        def training_step(self, batch, index):
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, index):
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    train = torch.utils.data.DataLoader(data(4096), batch_size=BATCH, shuffle=True)
    val = torch.utils.data.DataLoader(data(1024), batch_size=256)

    def fit() -> None:
        torch.manual_seed(0)
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,
        )
        trainer.fit(Regressor(), train, val)

    return fit


def recorded(kind: str) -> dict[str, Any]:
    """What one fit left in the store (params, metric keys, artifacts), for the table."""
    if kind == "autotrack":
        run = autotrack.search_runs()[0]
        files = [f.path for f in autotrack.list_artifacts(run.run_id)]
        return {"params": len(run.params), "metrics": sorted(run.metrics), "artifacts": files}
    import mlflow

    run = mlflow.search_runs(output_format="list")[0]
    client = mlflow.MlflowClient()
    files = [f.path for f in client.list_artifacts(run.info.run_id)]
    models = (
        mlflow.search_logged_models(output_format="list")
        if hasattr(mlflow, "search_logged_models")
        else []
    )
    return {
        "params": len(run.data.params),
        "metrics": sorted(run.data.metrics),
        "artifacts": files,
        "logged_models": len(models),
    }


def lightning_rows(repeat: int, epochs: int) -> list[dict[str, Any]]:
    import lightning.pytorch  # noqa: F401  (imported before autolog, as most scripts do)

    rows = []
    with tempfile.TemporaryDirectory() as root:
        fit = lightning_fit_fn(root, epochs)
        fit()  # warm-up
        for label, options in (("defaults", {}), ("log_models=False", {"log_models": False})):
            variants = {
                "plain": (nothing, nothing),
                "autotrack": (
                    lambda options=options: autotrack.pytorch.autolog(**options),
                    lambda: autotrack.pytorch.autolog(disable=True),
                ),
            }
            if harness.mlflow_available():
                variants["mlflow"] = mlflow_switch(options)
            times = interleaved(fit, variants, repeat)
            rows.append(
                row_from(f"Lightning fit, {epochs} epochs x 32 steps + val ({label})", times)
            )
        autotrack.pytorch.autolog()
        fit()
        autotrack.pytorch.autolog(disable=True)
        rows[0]["autotrack_records"] = recorded("autotrack")
        if harness.mlflow_available():
            import mlflow

            mlflow.pytorch.autolog()
            fit()
            mlflow.pytorch.autolog(disable=True)
            rows[0]["mlflow_records"] = recorded("mlflow")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as store:
        autotrack.set_tracking_uri(f"{store}/autotrack")
        if harness.mlflow_available():
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        rows = [
            step_overhead(repeat=3 if args.quick else 25),
            *(
                [step_overhead(repeat=3 if args.quick else 25, device="cuda")]
                if torch.cuda.is_available()
                else []
            ),
            loop_overhead(repeat=3 if args.quick else 25, epochs=2),
            *lightning_rows(repeat=2 if args.quick else 5, epochs=5),
        ]
        autotrack.flush()
    for row in rows:
        for kind in ("autotrack_records", "mlflow_records"):
            if kind in row:
                print(f"  {kind}: {row[kind]}")
    with contextlib.suppress(OSError):
        harness.write("pytorch", rows, torch_threads=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
