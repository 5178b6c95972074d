"""A toy framework and a toy integration built on the contract, for the engine's tests.

The framework is a real package written to a temporary folder and imported (a fresh import
name per test), so post-import hooks fire for real. The integration records params, a metric
after the call, per-epoch metrics from an injected callback, and lets a test inject a fault at
any stage.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotrack import engine, safety
from autotrack.autolog import make_autolog
from autotrack.integrations import IntegrationInfo
from autotrack.integrations.base import Call, CommonConfig, Hooks, Integration, PatchTarget
from autotrack.safety import safe_callback_methods

autolog_module = importlib.import_module("autotrack.autolog")  # the module, not the function

INIT = '''
"""A toy training framework."""
__version__ = "{version}"
from {name} import metrics, models
from {name}.models import Base, Model, Pipeline, Regressor, Search
'''

METRICS = '''
def score(y_true, y_pred):
    """Fraction of equal items."""
    return sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)
'''

MODELS = '''
import threading
from concurrent.futures import ThreadPoolExecutor

from {name}.metrics import score


class Base:
    """Fits the mean of X."""

    error = None

    def fit(self, X, y=None, *, epochs=1, callbacks=None):
        """Fit the toy model."""
        if self.error is not None:
            raise self.error
        self.coef_ = sum(X) / len(X)
        for epoch in range(epochs):
            for callback in callbacks or ():
                callback.on_epoch_end(epoch, {{"loss": 1.0 / (epoch + 1)}})
        return self

    def predict(self, X):
        return [self.coef_ for _ in X]

    @classmethod
    def create(cls, **params):
        """Build from keyword params."""
        model = cls()
        model.__dict__.update(params)
        return model

    @staticmethod
    def describe(value):
        return f"toy:{{value}}"


class Model(Base):
    pass


class Regressor(Base):
    def fit(self, X, y=None, **kwargs):
        """Fit, then score itself (a nested patched call)."""
        super().fit(X, y, **kwargs)
        self.score_ = score(X, self.predict(X))
        return self


class Pipeline(Base):
    def __init__(self, steps=()):
        self.steps = list(steps)

    def fit(self, X, y=None):
        for step in self.steps:
            step.fit(X, y)
        self.coef_ = len(self.steps)
        return self


def _fit_one(estimator, X):
    return type(estimator)().fit(X).coef_


class Search(Base):
    """Fits one clone per candidate, sequentially or on a thread pool."""

    def __init__(self, estimator=None, candidates=4, backend="sequential"):
        self.estimator = estimator if estimator is not None else Model()
        self.candidates = candidates
        self.backend = backend

    def fit(self, X, y=None):
        data = [list(X)] * self.candidates
        if self.backend == "threadpool":
            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda xs: _fit_one(self.estimator, xs), data))
        elif self.backend == "joblib":
            import joblib

            with joblib.parallel_backend("threading", n_jobs=2):
                results = joblib.Parallel()(
                    joblib.delayed(_fit_one)(self.estimator, xs) for xs in data
                )
        elif self.backend == "thread":
            results = [None] * len(data)

            def work(i):
                results[i] = _fit_one(self.estimator, data[i])

            threads = [threading.Thread(target=work, args=(i,)) for i in range(len(data))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            results = [_fit_one(self.estimator, xs) for xs in data]
        self.results_ = results
        self.coef_ = max(results)
        return self
'''

_counter = itertools.count()


@dataclass(frozen=True)
class ToyConfig(CommonConfig):
    log_epochs: bool = True  # a per-integration option


class Faults:
    """Which stages raise, shared by the hooks and the callback of one toy integration."""

    def __init__(self) -> None:
        self.stages: set[str] = set()

    def check(self, stage: str) -> None:
        if stage in self.stages:
            raise RuntimeError(f"injected fault in {stage}")


@safe_callback_methods
class EpochCallback:
    """Injected into `fit(callbacks=...)`: streams the loss per epoch."""

    def __init__(self, call: Call, faults: Faults) -> None:
        self.call = call
        self.faults = faults

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.faults.check("callback")
        if self.call.run is not None:
            self.call.run.log_metric("loss", logs["loss"], step=epoch)


class FitHooks(Hooks):
    def __init__(self, faults: Faults, events: list) -> None:
        self.faults = faults
        self.events = events

    def records(self, call: Call) -> bool:
        self.faults.check("records")
        return not getattr(call.instance, "no_record", False)

    def run_name(self, call: Call) -> str | None:
        return f"{type(call.instance).__name__}-fit"

    def before(self, call: Call) -> None:
        self.events.append(("before", type(call.instance).__name__))
        model = type(call.instance).__name__
        call.run.log_params({"model": model, "epochs": call.argument("epochs", 1)})
        self.faults.check("before")
        if call.config.log_epochs and "callbacks" in _parameters(call):
            callbacks = list(call.kwargs.get("callbacks") or [])
            call.kwargs["callbacks"] = [*callbacks, EpochCallback(call, self.faults)]

    def after(self, call: Call, result: Any) -> None:
        self.events.append(("after", type(call.instance).__name__))
        self.faults.check("after")
        call.run.log_metric("coef", result.coef_)
        call.run.log_dict({"coef": result.coef_}, "model/coef.json")

    def on_error(self, call: Call, exc: BaseException) -> None:
        self.events.append(("on_error", exc))
        self.faults.check("on_error")


def _parameters(call: Call) -> set[str]:
    import inspect

    return set(inspect.signature(call.original).parameters)


class ScoreHooks(Hooks):
    """A metric function: logs into the active run, never opens one."""

    opens_run = False

    def __init__(self, events: list) -> None:
        self.events = events

    def after(self, call: Call, result: Any) -> None:
        self.events.append(("score", result, call.run is not None))
        if call.run is not None:
            call.run.log_metric("score", result)


class ToyIntegration(Integration):
    config_class = ToyConfig

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.faults = Faults()
        self.events: list = []
        self.extras: list[str] = []
        self.targets_calls = 0

    def targets(self, module: types.ModuleType) -> list[PatchTarget]:
        self.targets_calls += 1
        self.faults.check("targets")
        fit = FitHooks(self.faults, self.events)
        models = module.models
        owners = [models.Base, models.Regressor, models.Pipeline, models.Search]
        return [PatchTarget(owner, "fit", fit) for owner in owners] + [
            PatchTarget(module.metrics, "score", ScoreHooks(self.events))
        ]

    def enable_extras(self, module: types.ModuleType, config: CommonConfig) -> None:
        self.extras.append("on")

    def disable_extras(self) -> None:
        self.extras.append("off")


@dataclass
class Toy:
    """One toy framework (not imported yet) plus its integration and `autolog`."""

    name: str
    folder: Path
    integration: ToyIntegration
    info: IntegrationInfo
    autolog: Any
    modules: list[str] = field(default_factory=list)

    def import_framework(self) -> types.ModuleType:
        return importlib.import_module(self.name)

    @property
    def events(self) -> list:
        return self.integration.events

    def fail(self, *stages: str) -> None:
        self.integration.faults.stages.update(stages)


def write_framework(folder: Path, name: str, version: str = "1.4.0") -> None:
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(INIT.format(name=name, version=version))
    (package / "metrics.py").write_text(METRICS)
    (package / "models.py").write_text(MODELS.format(name=name))


def make_toy(folder: Path, version: str = "1.4.0", supported: str = ">=1.0,<2") -> Toy:
    name = f"toyfw_{next(_counter)}_{id(folder) % 10_000}"
    write_framework(folder, name, version)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    integration = ToyIntegration(name)
    info = IntegrationInfo(name, f"{name}_at", (name,), f"{name}-dist", supported, (version,))
    return Toy(name, folder, integration, info, make_autolog(integration, info))


def forget_modules(prefix: str) -> None:
    for module_name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[module_name]


def toy_context(folder: Path) -> Iterator[Toy]:
    """Body of the `toy` fixture: a toy framework (not yet imported) with its integration."""
    made = make_toy(folder)
    yield made
    autolog_module._reset_for_tests()
    forget_modules(made.name)
    if str(made.folder) in sys.path:
        sys.path.remove(str(made.folder))


def clean_state() -> Iterator[None]:
    """Body of each module's autouse fixture: no integration on, no warnings remembered."""
    safety.reset_warnings()
    autolog_module._reset_for_tests()
    assert not engine.recording()
    yield
    autolog_module._reset_for_tests()
    safety.reset_warnings()


def runs(**filters: str) -> list:
    import autotrack

    found = autotrack.search_runs()
    return [r for r in found if all(r.tags.get(k) == v for k, v in filters.items())]
