"""The plain-loop recorder: torch's global hooks and the engine's per-call hooks feed one
`Recorder`, which keeps one `loop.Session` (an optimizer and its run) at a time.

Every entry point is a few attribute reads on the training thread; the host sees the losses
once per epoch (and every `log_every_n_steps` steps). See `pytorch_loop` for the rules.
"""

from __future__ import annotations

import atexit
import sys
import weakref
from typing import Any

from autotrack import engine, safety, tracking
from autotrack.entities import RunStatus
from autotrack.integrations import pytorch_hotpath
from autotrack.integrations import pytorch_loop as loop
from autotrack.integrations.pytorch_model import (
    ModelFinder,
    gpu_memory,
    live_config,
    log_module,
    log_new_params,
)

NAME = loop.NAME
DISCOVERY_TRIES = 3  # steps after which the model search gives up (and its hooks go)
MAX_UNSTEPPED = 16  # backward calls with no optimizer step before the model search stops


class Recorder:
    """Process-wide state of plain-loop capture (one instance, owned by the integration)."""

    def __init__(self) -> None:
        self.config: Any = None
        self.session: loop.Session | None = None
        self.schedulers: weakref.WeakKeyDictionary[Any, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.known: weakref.WeakSet[Any] = weakref.WeakSet()
        self.early = loop.LossBuffer()  # losses outside an epoch: they go to the next one
        self.step_losses: list[Any] = []  # losses since the last optimizer step
        self.scaled_source: Any = None  # the unscaled loss behind GradScaler.scale
        self.last_iter: weakref.ref[Any] | None = None
        self.last_loader: weakref.ref[Any] | None = None
        self.handles: list[Any] = []
        self.hot: list[pytorch_hotpath.Patch] = []
        self.busy = False  # inside our own hot-path work (or a validation loss call)
        self.backwards_unstepped = 0  # backward calls while looking for a model, no step yet
        self.finder = ModelFinder(self.contain)
        self.silent_rank = False
        self.exit_registered = False

    # -- switching on and off ---------------------------------------------------------------
    def enable(self, config: Any) -> None:
        import torch
        import torch.optim.optimizer  # the submodule, for its global hooks

        self.config = config
        if not self.handles:
            hooks = sys.modules["torch.optim.optimizer"]
            self.handles.append(hooks.register_optimizer_step_post_hook(self.on_step))
        if not self.hot:
            self.hot = pytorch_hotpath.install(torch, self)

    def disable(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        pytorch_hotpath.uninstall(self.hot)
        self.finder.disarm()
        session, self.session = self.session, None
        if session is not None:
            self._close(session, RunStatus.FINISHED)
        self.known = weakref.WeakSet()  # enabled again, an optimizer's next step opens a run
        self.config = None

    def refresh(self, config: Any) -> bool:
        """Take the live config from an engine call; False when loops are not recorded."""
        self.config = config
        return bool(getattr(config, "log_loops", True)) and not self.silent_rank

    def contain(self, stage: str, exc: Exception, run: Any = None) -> None:
        """Report autotrack's own error once (raise it in strict mode); training goes on."""
        if safety.strict():
            raise exc
        silent = bool(getattr(self.config, "silent", False))
        safety.report(f"callback:{stage}", exc, NAME, silent, run)

    def _resolve(self, session: loop.Session, optimizer: Any) -> None:
        """The model, once its forward has been seen (the search gives up after a few steps)."""
        found = self.finder.find(optimizer)
        if found is None:
            session.tries += 1
            session.gave_up = session.tries >= DISCOVERY_TRIES
            self.finder.disarm() if session.gave_up else self.finder.arm()
            return
        session.model, session.example = found
        params = loop.model_params(session.model)
        params.update(loop.device_params(loop.optimizer_tensors(optimizer)[:1]))
        self._log_params(session, params)

    # -- per-step entry points -----------------------------------------------------------------
    def on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """torch's global optimizer post-hook."""
        config = self.config
        if config is None or not getattr(config, "log_loops", True) or engine.recording():
            return
        try:
            session = self.session
            if session is not None and session.optimizer() is optimizer:
                self._step(session, optimizer)
            elif optimizer not in self.known and not self.silent_rank:
                self._first_step(optimizer)
        except Exception as exc:
            self.contain("step", exc, getattr(self.session, "run", None))

    def _step(self, session: loop.Session, optimizer: Any) -> None:
        session.steps += 1
        if not session.epoch_open:
            self._begin_epoch(session)
        session.epoch_steps += 1
        if session.every and session.steps % session.every == 0:
            self._log_step_loss(session)
        if self.step_losses:
            self.step_losses = []
        if session.model is None and not session.gave_up:
            self._resolve(session, optimizer)
        ref = session.train_iter
        if ref is not None:
            iterator = ref()
            if iterator is not None and loop.exhausted(iterator, session.epoch_len):
                self._close_epoch(session)

    def on_backward(self, tensor: Any) -> None:
        """`Tensor.backward` (before it runs): keep the scalar loss, detached, on its device."""
        if tensor.numel() != 1 or not tensor.requires_grad or self.silent_rank:
            return
        if not getattr(self.config, "log_loops", True):
            return
        loss = tensor.detach()
        if self.scaled_source is not None:
            loss, self.scaled_source = self.scaled_source, None
        if loss.dim():
            loss = loss.reshape(())
        session = self.session
        if session is not None and session.epoch_open:
            session.losses.add(loss)
        else:
            self.early.add(loss)
            if session is None:
                self._look_for_model()
        if len(self.step_losses) < 256:
            self.step_losses.append(loss)

    def _look_for_model(self) -> None:
        """Training outside Lightning & co has begun: watch module calls for the model, but
        only for a few backward calls without an optimizer step (gradients for other uses)."""
        if self.finder.handles:
            self.backwards_unstepped += 1
            if self.backwards_unstepped > MAX_UNSTEPPED:
                self.finder.disarm()
        elif self.backwards_unstepped <= MAX_UNSTEPPED:
            self.finder.arm()

    def on_scale(self, outputs: Any) -> None:
        """`GradScaler.scale(loss)`: the loss to record is the unscaled one."""
        if getattr(outputs, "numel", None) is not None and outputs.numel() == 1:
            self.scaled_source = outputs.detach().reshape(())

    def on_loader_iter(self, loader: Any, iterator: Any) -> None:
        """`DataLoader.__iter__` returned `iterator`: a pass over `loader` begins."""
        self.last_iter, self.last_loader = weakref.ref(iterator), weakref.ref(loader)
        session = self.session
        if session is None:
            self.early, self.step_losses = loop.LossBuffer(), []
            return
        if session.train_loader is not None and session.train_loader() is loader:
            self._close_epoch(session)
            self._begin_epoch(session)
            session.train_iter, session.epoch_len = weakref.ref(iterator), loop.length(iterator)

    def on_scheduler(self, scheduler: Any) -> None:
        """An LR scheduler was built: remember its settings for its optimizer's run."""
        optimizer = getattr(scheduler, "optimizer", None)
        if optimizer is None:
            return
        params = loop.scheduler_params(scheduler)
        self.schedulers[optimizer] = params
        session = self.session
        if session is not None and session.optimizer() is optimizer:
            self._log_params(session, params)

    def validation_starts(self) -> bool:
        """A loss module is about to run with gradients disabled: is this validation?"""
        session = self.session
        if session is None:
            return False
        last = self.last_iter() if self.last_iter is not None else None
        train = session.train_iter() if session.train_iter is not None else None
        in_pass = train is not None and not loop.exhausted(train, session.epoch_len)
        if in_pass and last is train:
            return False  # a no-grad metric inside the training pass
        if last is not None and last is not train:
            loader = self.last_loader() if self.last_loader is not None else None
            if session.val_loader is None:
                session.val_loader = self.last_loader
            elif session.val_loader() is not loader:
                return False  # another evaluation set (a test set after training)
        if not in_pass:
            self._close_epoch(session)
        if not len(session.val):
            session.val_step = session.epoch
        return True

    def validation_call(self, original: Any, module: Any, args: Any, kwargs: Any) -> Any:
        """A loss module called with gradients disabled while a run is open (see
        `pytorch_hotpath`): its result is a validation loss when `validation_starts` says so."""
        starts = False
        if not engine.recording():
            try:
                starts = self.validation_starts()
            except Exception as exc:
                self.contain("validation", exc)
        if not starts:
            return original(module, *args, **kwargs)
        self.busy = True  # a loss module calling another one counts once
        try:
            result = original(module, *args, **kwargs)
        finally:
            self.busy = False
        try:
            self.on_validation_loss(result)
        except Exception as exc:
            self.contain("validation", exc)
        return result

    def on_validation_loss(self, result: Any) -> None:
        session = self.session
        if session is None or getattr(result, "numel", None) is None or result.numel() != 1:
            return
        session.val.add(result.detach().reshape(()))
        last = self.last_iter() if self.last_iter is not None else None
        if last is not None and loop.exhausted(last, loop.length(last)):
            train = session.train_iter() if session.train_iter is not None else None
            if last is not train:
                self._flush_val(session)

    # -- epochs ---------------------------------------------------------------------------------
    def _begin_epoch(self, session: loop.Session) -> None:
        if session.epoch_open:
            return
        self._flush_val(session)
        session.epoch += 1
        session.epoch_open, session.epoch_steps = True, 0
        session.losses.extend(self.early)
        self.early = loop.LossBuffer()

    def _close_epoch(self, session: loop.Session) -> None:
        if not session.epoch_open or not (session.epoch_steps or len(session.losses)):
            return
        session.epoch_open = False
        metrics: dict[str, float] = {}
        mean = session.losses.take_mean()
        if mean is not None:
            metrics["train_loss"] = mean
        optimizer = session.optimizer()
        if optimizer is not None:
            metrics.update(loop.learning_rates(optimizer))
        metrics.update(gpu_memory(session.model))
        if metrics:
            session.run.log_metrics(metrics, step=session.epoch)

    def _flush_val(self, session: loop.Session) -> None:
        mean = session.val.take_mean()
        if mean is not None:
            session.run.log_metrics({"val_loss": mean}, step=session.val_step)

    def _log_step_loss(self, session: loop.Session) -> None:
        losses = self.step_losses
        if not losses:
            return
        import torch

        value = losses[0] if len(losses) == 1 else torch.stack(losses).double().mean()
        session.run.log_metrics({"train_loss_step": float(value.item())}, step=session.steps)

    # -- runs ----------------------------------------------------------------------------------
    def _first_step(self, optimizer: Any) -> None:
        self.known.add(optimizer)
        self.backwards_unstepped = 0
        session = self.session
        if session is not None:
            train = session.train_iter() if session.train_iter is not None else None
            alive = session.optimizer() is not None
            if alive and session.epoch_open and session.epoch_steps and train is not None:
                session.others.add(optimizer)  # steps in the same pass: one training (a GAN)
                return
            self._close(session, RunStatus.FINISHED)
        session = self._open(optimizer)
        if session is not None:
            self._step(session, optimizer)

    def _open(self, optimizer: Any) -> loop.Session | None:
        config = self.config = live_config() or self.config
        if config is None or not getattr(config, "log_loops", True):
            return None
        if not loop.rank_zero():
            self.silent_rank = True
            return None
        active = tracking.active_run()
        if active is not None and config.exclusive:
            return None
        import torch

        tags = engine.run_tags(NAME, "torch", str(torch.__version__), config)
        run: tracking.RunHandle
        if active is not None:
            run, managed = active, False
            run.set_tags(tags)
        else:
            run, managed = tracking.create_run(tags=tags), True
        every = int(getattr(config, "log_every_n_steps", 0) or 0)
        session = loop.Session(optimizer, run, managed, every)
        self.session = session
        session.losses, self.early = self.early, loop.LossBuffer()
        if not managed:
            self._watch_user_run(session, active)
        if not self.exit_registered:
            self.exit_registered = True
            atexit.register(self._at_exit)  # after tracking's own: runs before it
        params = loop.optimizer_params(optimizer)
        params.update(self.schedulers.get(optimizer, {}))
        params["seed"] = loop.user_seed()
        last = self.last_iter() if self.last_iter is not None else None
        if last is not None and self.last_loader is not None:
            session.train_loader, session.train_iter = self.last_loader, self.last_iter
            session.epoch_len = loop.length(last)
            loader = self.last_loader()
            if loader is not None:
                params.update(loop.loader_params(loader))
        self._log_params(session, params)
        return session

    def _log_params(self, session: loop.Session, params: dict[str, Any]) -> None:
        log_new_params(session.run, session.managed, params)

    def _watch_user_run(self, session: loop.Session, run: Any) -> None:
        """The user's run ends when their block does: flush into it first (and log the model)."""
        original = run.end
        recorder = self

        def end(status: Any = "FINISHED", wait: bool = True) -> Any:
            if recorder.session is session:
                try:
                    recorder.end_session(RunStatus(str(status).upper()))
                except Exception as exc:
                    recorder.contain("end_run", exc, run)
            return original(status, wait)

        run.end = end
        session.restore_end = lambda: vars(run).pop("end", None)

    def end_session(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """End the current loop's run now; its optimizer stepping again opens a new one."""
        session = self.session
        if session is None:
            return
        optimizer = session.optimizer()
        if optimizer is not None:
            self.known.discard(optimizer)
        self._close(session, status)

    def _close(self, session: loop.Session, status: RunStatus) -> None:
        """Flush what the session holds, log the model, end the run if autotrack opened it."""
        if self.session is session:
            self.session = None
        if session.restore_end is not None:
            session.restore_end()
        try:
            self._close_epoch(session)
            self._flush_val(session)
            config = self.config
            wanted = config is not None and config.log_models and session.model is not None
            if status is RunStatus.FINISHED and wanted:
                log_module(session.run, session.model, session.example, config)
        finally:
            if session.managed:
                session.run.end(status)

    def _at_exit(self) -> None:
        session = self.session
        if session is None:
            return
        open_runs = {handle.run_id for handle in tracking.iter_open_runs()}
        if session.run.run_id not in open_runs:  # ended already (an uncaught exception)
            self.session = None
            return
        try:
            self._close(session, RunStatus.FINISHED)
        except Exception as exc:
            self.contain("exit", exc, session.run)
