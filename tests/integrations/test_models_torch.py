"""autotrack.models with PyTorch: safetensors state dicts, modules rebuilt from model_class."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
np = pytest.importorskip("numpy")

import autotrack  # noqa: E402
from autotrack.models import (  # noqa: E402
    ModelError,
    ModelIntegrityError,
    SignatureError,
    Spec,
    load_model,
    log_model,
    save_model,
)


class Net(torch.nn.Module):
    """Dropout and a batch-norm buffer: predictions differ unless eval mode is used."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.norm = torch.nn.BatchNorm1d(8)
        self.drop = torch.nn.Dropout(0.5)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.norm(self.hidden(x)))))


class Tied(torch.nn.Module):
    """Input and output embeddings share one weight tensor (tied weights)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx):
        return self.head(self.embed(idx))


@pytest.fixture()
def trained():
    torch.manual_seed(0)
    net = Net()
    X = torch.randn(64, 4)
    y = (X.sum(dim=1) > 0).long()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        optimizer.step()
    return net, X


def _eval_output(net, X):
    net.eval()
    with torch.no_grad():
        out = net(X).numpy()
    net.train()
    return out


def test_module_round_trip_as_state_dict_and_module(tmp_path, trained):
    net, X = trained
    info = save_model(net, tmp_path / "m", X=X)
    assert info.flavor == "pytorch" and info.serialization_format == "safetensors"
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert "Linear(in_features=4, out_features=8" in (tmp_path / "m" / "model_repr.txt").read_text()
    descriptor = json.loads((tmp_path / "m" / "model.json").read_text())
    assert descriptor["model_class"].endswith("Net")
    assert descriptor["framework_version"] == torch.__version__
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements

    state = load_model(tmp_path / "m")
    assert set(state) == set(net.state_dict())
    for key, value in net.state_dict().items():
        assert torch.equal(state[key], value), key  # running stats (buffers) included

    module = load_model(tmp_path / "m", model_class=Net)
    assert type(module) is Net
    np.testing.assert_array_equal(_eval_output(module, X), _eval_output(net, X))
    instance = Net()
    assert load_model(tmp_path / "m", model_class=instance) is instance


def test_predictor_validates_shape_and_predicts_in_eval_mode(tmp_path, trained):
    net, X = trained
    save_model(net, tmp_path / "m", X=X)
    with pytest.raises(ModelError, match="model_class"):
        load_model(tmp_path / "m", as_predictor=True).predict(X.numpy())
    predictor = load_model(tmp_path / "m", model_class=Net, as_predictor=True)
    assert predictor.signature.inputs == (Spec(dtype="float32", shape=(-1, 4)),)
    expected = _eval_output(net, X)
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(X.numpy().astype("float64")), expected, rtol=1e-6)
    assert predictor.model.training  # the module's mode is restored after predicting
    with pytest.raises(SignatureError, match=r"shape \(64, 3\) but the model expects \(-1, 4\)"):
        predictor.predict(X[:, :3])


def test_tied_weights_and_plain_state_dict(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    idx = torch.tensor([[1, 2, 3]])
    save_model(model, tmp_path / "tied", X=idx)
    loaded = load_model(tmp_path / "tied", model_class=Tied)
    with torch.no_grad():
        assert torch.equal(loaded(idx), model(idx))
    predictor = load_model(tmp_path / "tied", model_class=Tied, as_predictor=True)
    np.testing.assert_array_equal(predictor.predict([[1, 2, 3]]), model(idx).detach().numpy())
    with pytest.raises(SignatureError, match="dtype float32 but the model expects int64"):
        predictor.predict(idx.float())

    state = {"w": torch.arange(6.0).reshape(2, 3).t(), "b": torch.zeros(3)}  # non-contiguous
    info = save_model(state, tmp_path / "state")
    assert info.flavor == "pytorch"
    back = load_model(tmp_path / "state")
    assert torch.equal(back["w"], state["w"]) and torch.equal(back["b"], state["b"])


def test_tampered_safetensors_is_refused(tmp_path, trained):
    net, _ = trained
    save_model(net, tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(tmp_path / "m")


def test_log_model_and_load_by_runs_uri(trained):
    net, X = trained
    with autotrack.start_run() as run:
        info = log_model(net, X=X)
    assert info.uri == f"runs:/{run.run_id}/model"
    module = load_model(info.uri, model_class=Net)
    np.testing.assert_array_equal(_eval_output(module, X), _eval_output(net, X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_module_saves_from_gpu_and_predicts_on_its_device(tmp_path, trained):
    net, X = trained
    expected = _eval_output(net, X)
    save_model(net.to("cuda"), tmp_path / "m", X=X)
    module = load_model(tmp_path / "m", model_class=Net).to("cuda")
    predictor = load_model(tmp_path / "m", model_class=module, as_predictor=True)
    np.testing.assert_allclose(predictor.predict(X.numpy()), expected, rtol=1e-5, atol=1e-6)
