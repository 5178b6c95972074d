"""The two patches a training step goes through: `Tensor.backward` (the loss) and the `forward`
of torch.nn loss classes (validation losses, with gradients disabled).

They run once or twice per step, so they are plain functions rather than engine patches: a
wrapt proxy plus the engine's per-call policy costs about 10 µs per call, 4% of a small CPU
step (measured with `benchmarks/bench_pytorch.py`); a plain function costs well under 1 µs.
The engine's rules are kept by hand: nothing is recorded inside a recorded call (a Lightning
fit), autotrack's errors are contained, the user's call runs outside any `try`, and
`uninstall` puts back the very originals. A loss `forward` wrapper is built on the original's
globals, so `torch.jit.script` of a loss module still compiles the original's source.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from autotrack import engine, safety

Patch = tuple[Any, str, Any, Any]  # (owner, attribute, original, wrapper)


def _backward_wrapper(original: Callable[..., Any], recorder: Any) -> Callable[..., Any]:
    recording = engine.recording

    @functools.wraps(original)
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if recorder.config is not None and not recorder.busy and not recording():
            recorder.busy = True  # a tensor subclass dispatches back into backward
            try:
                recorder.on_backward(self)
            except Exception as exc:
                recorder.contain("backward", exc)
            finally:
                recorder.busy = False
        return original(self, *args, **kwargs)

    return backward


def _loss_template(original: Any, recorder: Any, grad_enabled: Any) -> Callable[..., Any]:
    """The loss `forward` wrapper's code; only closure variables (no globals) are used."""

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if grad_enabled() or recorder.session is None or recorder.busy:
            return original(self, *args, **kwargs)  # training: the loss comes via backward()
        return recorder.validation_call(original, self, args, kwargs)

    return forward


def _loss_wrapper(original: Any, recorder: Any, grad_enabled: Any) -> Callable[..., Any]:
    template = _loss_template(original, recorder, grad_enabled)
    wrapper = types.FunctionType(
        template.__code__, original.__globals__, original.__name__, None, template.__closure__
    )
    return functools.update_wrapper(wrapper, original)


def install(torch: Any, recorder: Any) -> list[Patch]:
    """Patch `Tensor.backward` and the `forward` of every torch.nn loss class."""
    from torch.nn.modules import loss as losses

    patches: list[Patch] = []
    original = vars(torch.Tensor)["backward"]
    patches.append((torch.Tensor, "backward", original, _backward_wrapper(original, recorder)))
    for cls in vars(losses).values():
        if isinstance(cls, type) and issubclass(cls, losses._Loss) and "forward" in vars(cls):
            original = vars(cls)["forward"]
            wrapper = _loss_wrapper(original, recorder, torch.is_grad_enabled)
            patches.append((cls, "forward", original, wrapper))
    for owner, attribute, _, wrapper in patches:
        setattr(owner, attribute, wrapper)
    return patches


def uninstall(patches: list[Patch]) -> None:
    """Put the originals back; leave an attribute someone replaced since (and say so)."""
    for owner, attribute, original, wrapper in reversed(patches):
        if vars(owner).get(attribute) is wrapper:
            setattr(owner, attribute, original)
        else:
            where = f"{owner.__module__}.{owner.__qualname__}.{attribute}"
            safety.warn_once(
                ("revert", where), f"autotrack: {where} was replaced by other code after "
                "autotrack patched it; leaving it as it is."
            )  # fmt: skip
    patches.clear()
