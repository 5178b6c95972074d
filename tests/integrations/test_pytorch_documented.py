"""The PyTorch integration records only what its RECORDED table (the README) declares."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from documented import assert_documented  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations.pytorch import RECORDED  # noqa: E402


def test_plain_loop_records_only_declared_keys():
    autotrack.pytorch.autolog(log_every_n_steps=2)
    try:
        torch.manual_seed(0)
        X, y = torch.randn(64, 4), torch.randn(64, 1)
        train = DataLoader(TensorDataset(X, y), batch_size=16)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
        loss_fn = nn.MSELoss()
        with autotrack.start_run():
            for _ in range(2):
                for xb, yb in train:
                    optimizer.zero_grad()
                    loss_fn(model(xb), yb).backward()
                    optimizer.step()
                scheduler.step()
                with torch.no_grad():
                    loss_fn(model(X), y)
        run = autotrack.search_runs()[0]
        assert {"train_loss", "lr", "val_loss"} <= set(run.metrics)
        assert_documented(RECORDED)
    finally:
        autotrack.pytorch.autolog(disable=True)
