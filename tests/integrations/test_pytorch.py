"""Plain PyTorch loops, recorded with no change to the loop: real torch, tiny models, CPU
(CUDA cases skip without a GPU). Loops that must end their process run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from torch import nn  # noqa: E402

import autotrack  # noqa: E402
from autotrack import safety  # noqa: E402
from autotrack.integrations import pytorch as integration  # noqa: E402
from autotrack.integrations import pytorch_loop as loop  # noqa: E402
from autotrack.integrations import pytorch_session as integration_session  # noqa: E402

CUDA = torch.cuda.is_available()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


def make_loaders(n=96, batch_size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=generator)
    y = X[:, :3].sum(1, keepdim=True) - X[:, 3:4]
    data = torch.utils.data.TensorDataset(X, y)
    train = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:32], y[:32]), batch_size=8)
    return train, val, X


def train(epochs=3, lr=0.05, accumulate=1, device="cpu", optimizer_class=None, model=None,
          scheduler=True, validate=True, seed=0):  # fmt: skip
    """The loop a user writes; returns what the user would check, computed by hand."""
    torch.manual_seed(seed)
    train_loader, val_loader, X = make_loaders()
    model = (model or Net()).to(device)
    optimizer = (optimizer_class or torch.optim.SGD)(model.parameters(), lr=lr)
    sched = (
        torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5) if scheduler else None
    )
    criterion = nn.MSELoss()
    seen = {"train": [], "val": [], "lr": []}
    for _ in range(epochs):
        model.train()
        losses = []
        for index, (xb, yb) in enumerate(train_loader):
            loss = criterion(model(xb.to(device)), yb.to(device)) / accumulate
            loss.backward()
            losses.append(loss.item())
            if (index + 1) % accumulate == 0:
                optimizer.step()
                optimizer.zero_grad()
        seen["train"].append(sum(losses) / len(losses))
        seen["lr"].append(optimizer.param_groups[0]["lr"])
        if sched is not None:
            sched.step()
        if validate:
            model.eval()
            with torch.no_grad():
                val = [
                    criterion(model(xb.to(device)), yb.to(device)).item() for xb, yb in val_loader
                ]
            seen["val"].append(sum(val) / len(val))
    seen["model"], seen["X"] = model, X
    return seen


def history(run_id, key):
    return [(m.step, m.value) for m in autotrack.get_metric_history(run_id, key)]


def values(run_id, key):
    return [value for _, value in history(run_id, key)]


@pytest.fixture
def autolog():
    def enable(**options):
        integration.autolog(**options)

    enable()
    yield enable
    integration.autolog(disable=True)


def only_run():
    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.params for r in runs]
    return runs[0]


# -- pure functions -------------------------------------------------------------------------------
def test_params_of_optimizer_scheduler_model_and_loader():
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.2)
    params = loop.optimizer_params(optimizer)
    assert params["optimizer"] == "Adam"
    assert params["optimizer.lr"] == 0.01 and params["optimizer.weight_decay"] == 0.1
    assert params["optimizer.betas"] == (0.9, 0.999)
    assert not any(key.endswith(("foreach", "fused", "capturable")) for key in params)
    assert loop.scheduler_params(scheduler) == {
        "lr_scheduler": "StepLR",
        "lr_scheduler.gamma": 0.2,
        "lr_scheduler.step_size": 3,
    }
    model.body[0].weight.requires_grad_(False)
    assert loop.model_params(model) == {
        "model_class": "Net",
        "total_params": 6 * 16 + 16 + 16 + 1,
        "trainable_params": 16 + 16 + 1,
    }
    train_loader, _, _ = make_loaders()
    assert loop.loader_params(train_loader) == {"batch_size": 16, "dataset_size": 96}


def test_seed_is_the_one_given_to_manual_seed():
    torch.manual_seed(5)
    assert loop.user_seed() == 5
    torch.seed()  # a random 64-bit seed, as torch picks at start-up: not a chosen one
    assert loop.user_seed() is None
    torch.manual_seed(0)


def test_choose_model_prefers_the_module_owning_the_optimizers_parameters():
    model, other = Net(), Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert loop.choose_model([other, model.body, model], optimizer) is model.body  # first wins
    assert loop.choose_model([model, model.body], optimizer) is model
    assert loop.choose_model([other, nn.MSELoss()], optimizer) is None
    wrapped = torch.nn.DataParallel(model)
    assert loop.unwrap_module(wrapped) is model


def test_loss_buffer_compacts_on_device_and_takes_the_exact_mean():
    buffer = loop.LossBuffer()
    losses = [torch.tensor(float(i), dtype=torch.float32) for i in range(2500)]
    for loss in losses:
        buffer.add(loss)
    assert len(buffer.pending) < loop.COMPACT_EVERY and len(buffer.partials) == 2
    assert buffer.take_mean() == pytest.approx(sum(range(2500)) / 2500)
    assert buffer.take_mean() is None
    buffer.add(torch.tensor(1.0, dtype=torch.bfloat16))
    buffer.add(torch.tensor(2.0, dtype=torch.float64))
    assert buffer.take_mean() == pytest.approx(1.5)


# -- plain loops ----------------------------------------------------------------------------------
def test_loop_with_validation_and_scheduler_is_recorded(autolog):
    seen = train(epochs=3)
    integration.end_run()
    run = only_run()
    assert run.status == "FINISHED"
    assert run.tags["autotrack.integration"] == "pytorch"
    params = run.params
    assert params["optimizer"] == "SGD" and params["optimizer.lr"] == "0.05"
    assert params["lr_scheduler"] == "StepLR" and params["lr_scheduler.gamma"] == "0.5"
    assert params["batch_size"] == "16" and params["dataset_size"] == "96"
    assert params["model_class"] == "Net" and params["total_params"] == "129"
    assert params["trainable_params"] == "129"
    assert params["seed"] == "0" and params["device"] == "cpu"
    assert [step for step, _ in history(run.run_id, "train_loss")] == [0, 1, 2]
    assert values(run.run_id, "train_loss") == pytest.approx(seen["train"], rel=1e-5)
    assert values(run.run_id, "val_loss") == pytest.approx(seen["val"], rel=1e-5)
    assert [step for step, _ in history(run.run_id, "val_loss")] == [0, 1, 2]
    assert values(run.run_id, "lr") == pytest.approx([0.05, 0.025, 0.0125])
    names = {f.path for f in autotrack.list_artifacts(run.run_id, "model")}
    assert {"model/model.safetensors", "model/model_repr.txt"} <= names


def test_model_weights_round_trip(autolog):
    seen = train(epochs=2)
    integration.end_run()
    run = only_run()
    state = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert set(state) == set(seen["model"].state_dict())
    module = autotrack.load_model(f"runs:/{run.run_id}/model", model_class=Net)
    assert isinstance(module, Net)
    with torch.no_grad():
        assert torch.equal(module(seen["X"]), seen["model"](seen["X"]))
    with open(autotrack.artifact_path(run.run_id, "model/model_repr.txt")) as file:
        text = file.read()
    assert text.strip() == repr(seen["model"])


def test_train_loss_step_every_n_optimizer_steps(autolog):
    autolog(log_every_n_steps=4)
    torch.manual_seed(0)
    train_loader, _, _ = make_loaders()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    expected = []
    for step, (xb, yb) in enumerate(train_loader, start=1):
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 4 == 0:
            expected.append((step, loss.item()))
    integration.end_run()
    got = history(only_run().run_id, "train_loss_step")
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_gradient_accumulation_several_backward_per_step(autolog):
    seen = train(epochs=2, accumulate=3, scheduler=False)
    integration.end_run()
    run = only_run()
    assert values(run.run_id, "train_loss") == pytest.approx(seen["train"], rel=1e-5)
    assert values(run.run_id, "lr") == [0.05, 0.05]


def test_two_optimizers_in_sequence_make_two_runs(autolog):
    model = Net()
    first = train(epochs=2, model=model, scheduler=False, validate=False)
    second = train(epochs=3, model=model, lr=0.01, optimizer_class=torch.optim.Adam, seed=1)
    integration.end_run()
    runs = sorted(autotrack.search_runs(), key=lambda r: r.start_time)
    assert [r.params["optimizer"] for r in runs] == ["SGD", "Adam"]
    assert [r.status for r in runs] == ["FINISHED", "FINISHED"]
    assert values(runs[0].run_id, "train_loss") == pytest.approx(first["train"], rel=1e-5)
    assert values(runs[1].run_id, "train_loss") == pytest.approx(second["train"], rel=1e-5)
    assert runs[1].params["model_class"] == "Net" and runs[1].params["seed"] == "1"
    assert "val_loss" not in runs[0].metrics and "lr_scheduler" not in runs[0].params


def test_two_optimizers_stepping_in_one_pass_are_one_training(autolog):
    """A GAN-like loop: both optimizers step in every batch of the same pass."""
    torch.manual_seed(0)
    train_loader, _, _ = make_loaders()
    generator, critic = Net(), Net()
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-3)
    c_opt = torch.optim.SGD(critic.parameters(), lr=1e-2)
    for _ in range(2):
        for xb, yb in train_loader:
            for model, optimizer in ((critic, c_opt), (generator, g_opt)):
                optimizer.zero_grad()
                nn.functional.mse_loss(model(xb), yb).backward()
                optimizer.step()
    integration.end_run()
    run = only_run()
    assert run.params["optimizer"] == "SGD"  # the first to step
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1]


def test_lazy_module_counts_once_built():
    lazy = nn.LazyLinear(3)
    assert loop.model_params(lazy) == {"model_class": "LazyLinear"}
    lazy(torch.zeros(2, 4))
    assert loop.model_params(lazy)["total_params"] == 15


def test_loop_inside_a_user_run_logs_there_and_ends_with_the_block(autolog):
    with autotrack.start_run(run_name="mine") as run:
        seen = train(epochs=2)
    assert only_run().run_id == run.run_id
    recorded = autotrack.get_run(run.run_id)
    assert recorded.status == "FINISHED" and recorded.run_name == "mine"
    assert values(run.run_id, "train_loss") == pytest.approx(seen["train"], rel=1e-5)
    assert recorded.params["optimizer"] == "SGD"
    assert autotrack.list_artifacts(run.run_id, "model")  # logged before the run ended
    train(epochs=1)  # the same optimizer's loop after the block: a run of its own
    integration.end_run()
    assert len(autotrack.search_runs()) == 2


def test_exclusive_keeps_out_of_user_runs(autolog):
    autolog(exclusive=True)
    with autotrack.start_run() as run:
        train(epochs=1)
    integration.end_run()
    assert [r.run_id for r in autotrack.search_runs()] == [run.run_id]
    assert autotrack.get_run(run.run_id).params == {}


def test_results_unchanged_by_autolog(autolog):
    with_autolog = train(epochs=2)
    integration.autolog(disable=True)
    without = train(epochs=2)
    for a, b in zip(with_autolog["model"].parameters(), without["model"].parameters(), strict=True):
        assert torch.equal(a, b)
    assert with_autolog["train"] == without["train"] and with_autolog["val"] == without["val"]


def test_disable_restores_the_originals_and_removes_every_hook(autolog):
    from torch.nn.modules import loss as losses
    from torch.nn.modules import module as nn_module
    from torch.optim import lr_scheduler
    from torch.optim import optimizer as _  # noqa: F401

    hooks = sys.modules["torch.optim.optimizer"]
    integration.autolog(disable=True)
    owners = [torch.Tensor, torch.utils.data.DataLoader, losses.MSELoss, lr_scheduler.StepLR]
    before = [dict(vars(owner)) for owner in owners]
    integration.autolog()
    torch.zeros(1, requires_grad=True).sum().backward()  # arms the model search
    assert hooks._global_optimizer_post_hooks and nn_module._global_forward_pre_hooks
    assert vars(torch.Tensor)["backward"] is not before[0]["backward"]
    integration.autolog(disable=True)
    assert not hooks._global_optimizer_post_hooks
    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks
    for owner, original in zip(owners, before, strict=True):
        assert vars(owner) == original  # the very same objects, nothing left behind
    train(epochs=1)
    assert autotrack.search_runs() == []


def test_loop_failing_inside_a_user_run_fails_it_without_a_model(autolog):
    with pytest.raises(ValueError, match="user error"), autotrack.start_run() as run:
        seen = train(epochs=2)
        raise ValueError("user error")
    recorded = autotrack.get_run(run.run_id)
    assert recorded.status == "FAILED"
    assert values(run.run_id, "train_loss") == pytest.approx(seen["train"], rel=1e-5)
    assert not autotrack.list_artifacts(run.run_id, "model")


def test_model_search_hooks_only_while_a_loop_looks_for_its_model(autolog):
    from torch.nn.modules import module as nn_module

    model = Net()
    with torch.no_grad():
        model(torch.zeros(2, 6))  # inference: no search, torch's fast path stays
    assert not nn_module._global_forward_pre_hooks
    loss = model(torch.zeros(2, 6)).sum()
    loss.backward()  # training starts: look for the model
    assert nn_module._global_forward_pre_hooks
    train(epochs=1, validate=False)
    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks


def test_gradients_without_an_optimizer_stop_the_model_search(autolog):
    from torch.nn.modules import module as nn_module

    model = Net()
    for _ in range(integration_session.MAX_UNSTEPPED + 2):  # saliency maps, say
        x = torch.randn(4, 6, requires_grad=True)
        model(x).sum().backward()
    assert not nn_module._global_forward_pre_hooks  # torch's fast path is back


def test_loss_modules_still_script_while_patched(autolog):
    scripted = torch.jit.script(nn.MSELoss())
    assert scripted(torch.ones(3), torch.zeros(3)).item() == 1.0


def test_an_autotrack_bug_never_breaks_the_loop(autolog, monkeypatch):
    monkeypatch.setenv(safety.STRICT_ENV, "0")
    safety.reset_warnings()

    def broken(*args, **kwargs):
        raise RuntimeError("autotrack bug")

    monkeypatch.setattr(integration.RECORDER, "_close_epoch", broken)
    monkeypatch.setattr(integration.RECORDER, "on_backward", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = train(epochs=2)
    assert len(seen["train"]) == 2
    assert any("autotrack bug" in str(w.message) for w in caught)
    monkeypatch.undo()
    integration.end_run()
    assert only_run().params["optimizer"] == "SGD"


def test_full_batch_loop_without_a_dataloader(autolog):
    torch.manual_seed(0)
    _, _, X = make_loaders()
    y = X.sum(1, keepdim=True)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    criterion = nn.MSELoss()
    train_losses, val_losses = [], []
    for _ in range(3):
        loss = criterion(model(X[:64]), y[:64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_losses.append(loss.item())
        with torch.no_grad():
            val_losses.append(criterion(model(X[64:]), y[64:]).item())
    integration.end_run()
    run = only_run()
    assert history(run.run_id, "train_loss") == [
        (i, pytest.approx(v, rel=1e-6)) for i, v in enumerate(train_losses)
    ]
    assert values(run.run_id, "val_loss") == pytest.approx(val_losses, rel=1e-6)
    assert "batch_size" not in run.params


def test_grad_scaler_records_the_unscaled_loss(autolog):
    torch.manual_seed(0)
    train_loader, _, _ = make_loaders()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    losses = []
    for xb, yb in train_loader:
        loss = nn.functional.mse_loss(model(xb), yb)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        losses.append(loss.item())
    integration.end_run()
    assert values(only_run().run_id, "train_loss") == pytest.approx([sum(losses) / len(losses)])


# -- process boundaries -------------------------------------------------------------------------
SCRIPT = """
import autotrack, torch
from torch import nn
autotrack.{autolog}()
torch.manual_seed(0)
X = torch.randn(64, 4); y = X.sum(1, keepdim=True)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range({epochs}):
    for batch, (xb, yb) in enumerate(loader):
        if epoch == {fail_epoch} and batch == 2:
            raise ValueError("user error mid-epoch")
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
"""


def run_script(tmp_path, store_uri, code):
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "AUTOTRACK_TRACKING_URI": store_uri}
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240
    )


def test_run_ends_at_process_exit_with_the_model(tmp_path, store_uri):
    """`autotrack.autolog()` (every framework) records the loop; the run ends at exit."""
    done = run_script(
        tmp_path, store_uri, SCRIPT.format(autolog="autolog", epochs=3, fail_epoch=-1)
    )
    assert done.returncode == 0, done.stderr
    run = only_run()
    assert run.status == "FINISHED"
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1, 2]
    state = autotrack.load_model(f"runs:/{run.run_id}/model")
    assert set(state) == {"weight", "bias"}


def test_loop_raising_mid_epoch_keeps_epochs_so_far_and_fails_the_run(tmp_path, store_uri):
    done = run_script(
        tmp_path, store_uri, SCRIPT.format(autolog="pytorch.autolog", epochs=5, fail_epoch=2)
    )
    assert done.returncode == 1 and "ValueError: user error mid-epoch" in done.stderr
    run = only_run()
    assert run.status == "FAILED"
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1]
    assert not autotrack.list_artifacts(run.run_id, "model")


DDP_SCRIPT = """
import os, sys, torch, torch.distributed as dist
import autotrack
autotrack.pytorch.autolog()
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
X = torch.randn(32, 4); y = X.sum(1, keepdim=True)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=8)
for epoch in range(2):
    for xb, yb in loader:
        torch.nn.functional.mse_loss(model(xb), yb).backward()
        optimizer.step()
        optimizer.zero_grad()
dist.destroy_process_group()
"""


def test_ddp_only_rank_zero_records(tmp_path, store_uri):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "AUTOTRACK_TRACKING_URI": store_uri}
    rendezvous = str(tmp_path / "rendezvous")
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), rendezvous],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
    run = only_run()
    assert run.params["model_class"] == "Linear"  # the module inside DistributedDataParallel
    assert [s for s, _ in history(run.run_id, "train_loss")] == [0, 1]


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_loop_is_recorded_without_a_sync_per_step(autolog):
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen = train(epochs=2, device="cuda", validate=False, scheduler=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    integration.end_run()
    run = only_run()
    assert run.params["device"] == "cuda:0" and run.params["device_name"]
    assert values(run.run_id, "train_loss") == pytest.approx(seen["train"], rel=1e-4)
    assert values(run.run_id, "gpu_peak_memory_mb")[0] > 0
    ours = [w for w in caught if "autotrack" in (w.filename or "")]
    # one transfer per epoch, and once the first input rows (the model's example): never per step
    assert len(ours) <= 3, [(w.filename, w.lineno, str(w.message)) for w in ours]


def test_status_lists_the_patch_points(autolog):
    rows = [r for r in autotrack.status() if r.integration == "pytorch"]
    targets = {r.target for r in rows if r.state == "patched"}
    assert any(t.endswith("DataLoader.__iter__") for t in targets)
    assert any(t.endswith("StepLR.__init__") for t in targets)
    assert json.dumps([r.state for r in rows])
