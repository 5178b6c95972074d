"""The integration contract: an integration *describes* what to record; the engine
(`autotrack.engine`) orchestrates patching, runs and error containment.

A new framework is one module in this package defining a subclass of `Integration`, an
instance of it, and `autolog = make_autolog(<instance>)`, plus one row in the registry
(`autotrack.integrations.REGISTRY`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from autotrack.tracking import RunHandle


@dataclass(frozen=True)
class CommonConfig:
    """Options every integration accepts (MLflow-compatible meaning)."""

    disable: bool = False
    exclusive: bool = False  # never log into a run the user started
    log_models: bool = True
    log_datasets: bool = True
    log_input_examples: bool = True
    log_model_signatures: bool = True
    silent: bool = False
    disable_for_unsupported_versions: bool = False
    extra_tags: Mapping[str, str] | None = None


class Hooks:
    """What happens around one kind of patched call. Override what you need.

    Every method runs under containment: an exception here becomes one warning and the
    user's call proceeds untouched.
    """

    #: False for calls that only add to an existing run (e.g. `evaluate` after `fit`, a
    #: `sklearn.metrics` call): the engine then never opens a run for them, `call.run` is the
    #: active run or None, and hooks decide where to log.
    opens_run: ClassVar[bool] = True

    def records(self, call: Call) -> bool:
        """Whether this call is recorded at all (e.g. a standalone scaler fit is not)."""
        return True

    def run_name(self, call: Call) -> str | None:
        """Name for a run the engine opens for this call (None: a generated name)."""
        return None

    def before(self, call: Call) -> None:
        """Log params/tags; may replace `call.args`/`call.kwargs` (e.g. add a callback)."""

    def after(self, call: Call, result: Any) -> None:
        """Log metrics, plots and the model once the call returned `result`."""

    def on_error(self, call: Call, exc: BaseException) -> None:
        """The user's call raised `exc` (it is re-raised unchanged afterwards)."""


@dataclass(frozen=True)
class PatchTarget:
    """Wrap `owner.attribute` (a function on a module, or a method on a library class)."""

    owner: Any
    attribute: str
    hooks: Hooks


@dataclass
class Call:
    """What hooks see of one patched call."""

    integration: Integration
    target: PatchTarget
    instance: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    config: CommonConfig
    run: RunHandle | None
    managed: bool  # True when the engine opened `run` for this call and will end it
    original: Any = None  # the unwrapped callable (its signature is the user's)
    state: dict[str, Any] = field(default_factory=dict)
    _bound: inspect.BoundArguments | None = None

    def argument(self, name: str, default: Any = None) -> Any:
        """The value the user passed for parameter `name` (by position or keyword)."""
        if name in self.kwargs:
            return self.kwargs[name]
        bound = self.bound()
        return bound.arguments.get(name, default) if bound is not None else default

    def bound(self) -> inspect.BoundArguments | None:
        if self._bound is None:
            try:
                signature = inspect.signature(self.original)
                args = self.args
                if self.instance is not None and _takes_self(signature):
                    args = (self.instance, *args)
                self._bound = signature.bind_partial(*args, **self.kwargs)
            except (TypeError, ValueError):
                return None
        return self._bound


def _takes_self(signature: inspect.Signature) -> bool:
    params = list(signature.parameters)
    return bool(params) and params[0] in ("self", "cls")


class Integration:
    """One framework. Subclasses set the class attributes and implement `targets`."""

    name: ClassVar[str]
    config_class: ClassVar[type[CommonConfig]] = CommonConfig

    def targets(self, module: ModuleType) -> list[PatchTarget]:
        """Patch targets, computed from the framework module once it is imported."""
        raise NotImplementedError

    def submodules(self, module: ModuleType) -> list[str]:
        """More modules to patch (with `targets(submodule)`) once each is imported, so that
        enabling never imports the rest of a large framework."""
        return []

    def framework_version(self, module: ModuleType) -> str:
        return str(getattr(module, "__version__", "unknown"))

    def enable_extras(self, module: ModuleType, config: CommonConfig) -> None:
        """Install non-patch extension points (global hooks); called once when enabled."""

    def disable_extras(self) -> None:
        """Remove whatever `enable_extras` installed."""
