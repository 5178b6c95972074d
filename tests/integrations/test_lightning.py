"""Lightning autologging (`lightning` and `pytorch_lightning`) on a tiny real model, CPU."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
pytest.importorskip("safetensors")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import autotrack  # noqa: E402
from autotrack import safety  # noqa: E402
from autotrack.integrations import pytorch as integration  # noqa: E402
from autotrack.integrations import pytorch_lightning as lit  # noqa: E402
from autotrack.integrations import pytorch_lightning_values as values  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]


class LitRegressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.example_input_array = torch.zeros(2, 6)
        self.step_losses: list[tuple[int, float]] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, index):
        if self.global_step == self.hparams.fail_at:
            raise ValueError("user error in training_step")
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.step_losses.append((self.global_step + 1, loss.item()))
        return loss

    def validation_step(self, batch, index):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def test_step(self, batch, index):
        x, y = batch
        self.log("test_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class EpochValues(L.Callback):
    """What a user reads at each epoch end: the reference for the recorded curves."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def loaders():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 6, generator=generator)
    y = X[:, :3].sum(1, keepdim=True)
    data = torch.utils.data.TensorDataset(X, y)
    train = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True, generator=generator)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:32], y[:32]), batch_size=16)
    return train, val, X


def trainer(tmp_path, callbacks=(), **settings):
    options = dict(max_epochs=3, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=str(tmp_path))  # fmt: skip
    options.update(settings)
    return L.Trainer(callbacks=list(callbacks), **options)


def history(run_id, key):
    return [(m.step, m.value) for m in autotrack.get_metric_history(run_id, key)]


def only_run():
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.params for r in runs]
    return runs[0]


@pytest.fixture
def autolog():
    integration.autolog()
    yield integration.autolog
    integration.autolog(disable=True)


# -- pure functions -------------------------------------------------------------------------
def test_epoch_and_step_metrics_keep_their_axes_apart():
    every = {"train_loss": 1.0, "train_loss_step": 2.0, "train_loss_epoch": 1.0, "val_loss": 3.0}
    assert values.epoch_metrics(every, every) == {"train_loss": 1.0, "val_loss": 3.0}
    step = {"train_loss": 2.0, "train_loss_step": 2.0, "lr_now": 0.1}
    assert values.step_metrics(step, step) == {"train_loss_step": 2.0, "lr_now_step": 0.1}
    seen: dict = {}
    value = torch.tensor(1.0)
    assert values.fresh({"a": value}, seen) == {"a": value}
    assert values.fresh({"a": value}, seen) == {}  # the same object: not logged again


def test_hparams_flatten_and_clashes_move_aside():
    flat = values.flatten({"lr": 0.1, "net": {"depth": 2, "act": nn.ReLU()}, "skip": None})
    assert flat == {"lr": 0.1, "net.depth": 2, "net.act": "ReLU()"}
    merged = values.merge_params({"max_epochs": 3}, {"max_epochs": 5, "lr": 0.1})
    assert merged == {"max_epochs": 3, "hparams.max_epochs": 5, "lr": 0.1}
    assert values.eval_metrics([{"test_loss": torch.tensor(0.5)}, {"acc": 1}]) == {
        "test_loss": 0.5,
        "acc": 1.0,
    }


# -- fit ----------------------------------------------------------------------------------------
def test_fit_with_validation_early_stopping_and_checkpoint(autolog, tmp_path):
    L.seed_everything(0)
    train, val, X = loaders()
    reference = EpochValues()
    stop = L.pytorch.callbacks.EarlyStopping("val_loss", patience=1, min_delta=100.0)
    best = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss")
    user_callbacks = [reference, stop, best]
    fitter = trainer(tmp_path, user_callbacks, max_epochs=10)
    before = fitter.callbacks
    model = LitRegressor()
    fitter.fit(model, train, val)
    assert fitter.callbacks is before and user_callbacks == [reference, stop, best]
    run = only_run()
    assert run.status == "FINISHED"
    assert run.tags["autotrack.integration"] == "pytorch"
    assert run.tags["autotrack.framework"] == "lightning"
    params = run.params
    assert params["max_epochs"] == "10" and params["precision"] == "32-true"
    assert params["lr"] == "0.05" and params["hidden"] == "8" and params["seed"] == "0"
    assert params["optimizer"] == "SGD" and params["optimizer.lr"] == "0.05"
    assert params["lr_scheduler"] == "StepLR" and params["lr_scheduler.interval"] == "epoch"
    assert params["early_stopping.monitor"] == "val_loss"
    assert params["early_stopping.patience"] == "1"
    assert params["checkpoint.monitor"] == "val_loss"
    assert params["model_class"] == "LitRegressor" and params["total_params"] == "65"
    assert "batch_size" not in params  # the plain-loop capture stayed silent
    epochs = len(reference.epochs)
    assert epochs == 2 == stop.stopped_epoch + 1
    for key in ("train_loss", "val_loss"):
        assert history(run.run_id, key) == [
            (i, pytest.approx(values[key], rel=1e-6)) for i, values in enumerate(reference.epochs)
        ]
    assert [v for _, v in history(run.run_id, "lr")] == pytest.approx([0.05, 0.025])
    assert not {"train_loss_epoch", "train_loss_step"} & set(run.metrics)
    assert run.metrics["early_stopping.stopped_epoch"] == 1
    assert run.metrics["early_stopping.best_score"] == pytest.approx(float(stop.best_score))
    assert run.metrics["checkpoint.best_model_score"] == pytest.approx(float(best.best_model_score))
    assert run.tags["checkpoint.best_model_path"] == best.best_model_path

    loaded = autotrack.load_model(f"runs:/{run.run_id}/model", model_class=LitRegressor())
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
    best_state = autotrack.load_model(f"runs:/{run.run_id}/best_model")
    saved = torch.load(best.best_model_path, weights_only=False)["state_dict"]  # our own file
    assert all(torch.equal(best_state[k], saved[k]) for k in saved)

    results = fitter.test(model, val, verbose=False)
    test_loss = autotrack.get_metric_history(run.run_id, "test_loss")
    assert [(m.step, m.value) for m in test_loss] == [(2, pytest.approx(results[0]["test_loss"]))]
    checked = fitter.validate(model, val, verbose=False)  # after fit: post-training metrics
    assert history(run.run_id, "val_loss")[-1] == (2, pytest.approx(checked[0]["val_loss"]))
    assert len(autotrack.search_runs()) == 1


def test_test_without_a_recorded_fit_records_nothing(autolog, tmp_path):
    _, val, _ = loaders()
    trainer(tmp_path).test(LitRegressor(), val, verbose=False)
    assert autotrack.search_runs() == []


def test_step_metrics_every_n_steps(autolog, tmp_path):
    autolog(log_every_n_steps=2)
    L.seed_everything(0)
    train, val, _ = loaders()
    model = LitRegressor()
    trainer(tmp_path, max_epochs=2).fit(model, train, val)
    got = history(only_run().run_id, "train_loss_step")
    expected = [(step, value) for step, value in model.step_losses if step % 2 == 0]
    assert [s for s, _ in got] == [s for s, _ in expected] == [2, 4, 6, 8]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_validation_every_other_epoch_is_not_logged_twice(autolog, tmp_path):
    train, val, _ = loaders()
    trainer(tmp_path, max_epochs=4, check_val_every_n_epoch=2).fit(LitRegressor(), train, val)
    run = only_run()
    assert [s for s, _ in history(run.run_id, "val_loss")] == [1, 3]
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1, 2, 3]


def test_fit_inside_a_user_run_logs_there(autolog, tmp_path):
    train, val, _ = loaders()
    with autotrack.start_run() as run:
        trainer(tmp_path, max_epochs=1).fit(LitRegressor(), train, val)
    assert only_run().run_id == run.run_id
    assert autotrack.get_run(run.run_id).params["optimizer"] == "SGD"


def test_user_error_propagates_unchanged_and_the_run_fails(autolog, tmp_path):
    train, val, _ = loaders()
    fitter = trainer(tmp_path)
    before = fitter.callbacks
    with pytest.raises(ValueError, match="user error in training_step") as raised:
        fitter.fit(LitRegressor(fail_at=5), train, val)
    assert raised.type is ValueError
    assert fitter.callbacks is before
    run = only_run()
    assert run.status == "FAILED"
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0]  # the epoch that finished


def test_results_unchanged_by_autolog(autolog, tmp_path):
    def fit():
        L.seed_everything(0)
        train, val, _ = loaders()
        model = LitRegressor()
        trainer(tmp_path, max_epochs=2).fit(model, train, val)
        return [p.detach().clone() for p in model.parameters()]

    with_autolog = fit()
    integration.autolog(disable=True)
    without = fit()
    assert all(torch.equal(a, b) for a, b in zip(with_autolog, without, strict=True))


def test_a_callback_bug_never_breaks_fit(autolog, tmp_path, monkeypatch):
    monkeypatch.setenv(safety.STRICT_ENV, "0")
    safety.reset_warnings()

    def broken(self, trainer):
        raise RuntimeError("autotrack callback bug")

    monkeypatch.setattr(lit.FitRecorder, "flush", broken)
    train, val, _ = loaders()
    fitter = trainer(tmp_path, max_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitter.fit(LitRegressor(), train, val)
    assert fitter.current_epoch == 2
    assert any("autotrack callback bug" in str(w.message) for w in caught)
    assert only_run().status == "FINISHED"


def test_disable_restores_the_trainer(autolog, tmp_path):
    patched = vars(L.Trainer)["fit"]
    integration.autolog(disable=True)
    assert vars(L.Trainer)["fit"] is not patched
    assert type(vars(L.Trainer)["fit"]).__name__ == "function"
    train, val, _ = loaders()
    trainer(tmp_path, max_epochs=1).fit(LitRegressor(), train, val)
    assert autotrack.search_runs() == []


def test_pytorch_lightning_package_too(autolog, tmp_path):
    pl = pytest.importorskip("pytorch_lightning")

    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(6, 1)

        def training_step(self, batch, index):
            loss = F.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

    train, _, _ = loaders()
    options = dict(max_epochs=2, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=str(tmp_path))  # fmt: skip
    pl.Trainer(**options).fit(Model(), train)
    run = only_run()
    assert run.tags["autotrack.framework"] == "pytorch_lightning"
    assert run.params["optimizer"] == "Adam"
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1]
