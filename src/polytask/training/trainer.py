"""The Trainer: fit and evaluate any multi-task model with any balancer."""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from polytask.balancers.base import Balancer
from polytask.data.batching import Batches, IndexBatcher, IterableBatches
from polytask.data.dataset import Batch, TensorTaskDataset
from polytask.gradients.backward import backward
from polytask.gradients.jacobian import Method
from polytask.gradients.linear import LinearTaps
from polytask.gradients.protocol import Level
from polytask.models.base import MultiTaskModel
from polytask.outputs import features_unused
from polytask.tasks.taskset import TaskSet
from polytask.training import checkpoint as ckpt
from polytask.training.allocator import glibc_version, keep_freed_memory
from polytask.training.config import FieldError, check_range
from polytask.training.interrupts import StopRequest, TrainingInterrupted
from polytask.training.logger import JsonlLogger, TensorBoardLogger
from polytask.training.run_folder import (
    MAY_CHANGE_ON_RESUME,
    RunFolder,
    RunMismatchError,
    fingerprint,
    log_size,
    mismatch_message,
    settings_differences,
    truncate_log,
)


@dataclass
class TrainerConfig:
    """How to train.

    Attributes:
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps in total (``None``: no limit).
        batch_size: training rows per step.
        eval_batch_size: rows per evaluation batch.
        level: where gradient methods take per-task gradients: ``representation`` (w.r.t.
            the shared features; cheap) or ``parameter`` (w.r.t. the shared parameters; exact).
            Ignored by loss weightings.
        gradient_method: ``auto``, ``loop`` or ``vmap`` (see :mod:`polytask.gradients`).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1`` ...
        amp: mixed precision (bfloat16 autocast of the forward) on CUDA; ignored on CPU.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        monitor: validation quantity for model selection and early stopping: ``loss`` (mean
            validation loss over tasks) or ``task/metric`` such as ``left/accuracy``.
        patience: stop after this many epochs without improvement (``None``: never).
        log_every: read losses back from the device and log every this many steps.
        checkpoint_every: also write ``last.pt`` every this many steps (0: epoch ends only).
        progress: show a progress bar (stderr).
        seed: seed of parameter-free randomness (data order; torch's global RNG at start).
        run_dir: folder for ``metrics.jsonl`` and ``checkpoints/`` (``None``: write nothing).
        tensorboard: also write TensorBoard scalars to ``run_dir/tensorboard`` (needs the
            ``tensorboard`` extra).
        keep_freed_memory: on the CPU with glibc (Linux), :meth:`Trainer.fit` first makes
            ``malloc`` keep freed memory for the next step instead of returning it to the OS
            (:func:`~polytask.training.allocator.keep_freed_memory`; process-wide; a Gramian
            step's large temporaries are then not page-faulted in again every step).
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 256
    eval_batch_size: int = 1024
    level: Level = "representation"
    gradient_method: Method = "auto"
    device: str = "auto"
    amp: bool = False
    grad_clip: float | None = None
    monitor: str = "loss"
    patience: int | None = None
    log_every: int = 50
    checkpoint_every: int = 0
    progress: bool = True
    seed: int = 0
    run_dir: str | None = None
    tensorboard: bool = False
    keep_freed_memory: bool = True

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("max_steps", self.max_steps, low=1, optional=True)
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_batch_size", self.eval_batch_size, low=1)
        check_range("grad_clip", self.grad_clip, above=0, optional=True)
        check_range("patience", self.patience, low=1, optional=True)
        check_range("log_every", self.log_every, low=1)
        check_range("checkpoint_every", self.checkpoint_every, low=0)
        if self.level not in ("representation", "parameter"):
            raise FieldError(
                "level", f"must be 'representation' or 'parameter', got {self.level!r}"
            )
        if self.tensorboard and self.run_dir is None:
            raise FieldError("tensorboard", "true needs a run_dir to write into")


@dataclass
class FitResult:
    """Outcome of :meth:`Trainer.fit`.

    Attributes:
        best_epoch: epoch (1-based) whose validation ``monitor`` was best (0 if no validation).
        best_score: that value.
        history: one record per epoch (train losses, validation losses and metrics).
        steps: optimizer steps taken in total; skipped_steps: steps skipped for a non-finite
            loss; stopped_early: whether patience ended training.
    """

    best_epoch: int
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    skipped_steps: int = 0
    stopped_early: bool = False


class StopTrainingSignal(Exception):  # noqa: N818  (a signal, not an error)
    """Raised by a callback to end training cleanly after the current step."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; otherwise ``torch.device(name)``, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available")
    return device


StepCallback = Callable[["Trainer", int], None]


class Trainer:
    """Trains a :class:`~polytask.models.MultiTaskModel` on a :class:`~polytask.TaskSet` with
    any balancer, through :func:`polytask.backward`.

    Each step: forward (bfloat16 autocast on CUDA if ``amp``), ``tasks.losses`` (masked,
    finite-checked), ``polytask.backward`` at the configured level, optional clipping,
    ``optimizer.step()`` and a per-step scheduler. Model selection and early stopping read the
    validation split only; the test split is for :meth:`evaluate` after :meth:`fit`.

    Checkpoints (``run_dir/checkpoints/last.pt``) hold model, optimizer, scheduler, balancer,
    batcher and RNG states plus the selection state, are written atomically, and a run
    resumed from one (``fit(..., resume=True)``) is bit-identical on CPU to an uninterrupted
    run. Ctrl-C finishes the current step, writes a checkpoint and then stops.

    Args:
        model: the model (moved to the configured device).
        tasks: the task set.
        balancer: the balancer (moved to the device; its parameters, if any, must be in the
            optimizer, as :func:`~polytask.training.optim.build_optimizer` does).
        optimizer: the optimizer.
        scheduler: an optional per-step learning-rate scheduler.
        config: :class:`TrainerConfig`.
        callbacks: called as ``callback(trainer, step)`` after every optimizer step; raise
            :class:`StopTrainingSignal` to stop.
        run_settings: further settings that define the run (the experiment passes its data
            set and model options); stored in checkpoints with the trainer's own
            (:meth:`settings`), and a resume under other settings is refused.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: TaskSet,
        balancer: Balancer,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        config: TrainerConfig | None = None,
        callbacks: tuple[StepCallback, ...] = (),
        run_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or TrainerConfig()
        self.run_settings = dict(run_settings or {})
        self._settings: dict[str, Any] | None = None
        self._linear_taps: LinearTaps | None = None
        missing = [t for t in tasks.names if t not in model.task_names]
        if missing:
            raise ValueError(
                f"the model has no head for task(s) {missing}; "
                f"its tasks are {list(model.task_names)}"
            )
        balancer.check_level(None if balancer.needs == "losses" else self.config.level)
        # Bound now, so that learnt per-task parameters exist (and move to the device).
        balancer.bind(tasks.names, tasks.roles(), {t.name: t.weight for t in tasks})
        self.device = resolve_device(self.config.device)
        self.model = model.to(self.device)
        self.balancer = balancer.to(self.device)
        self.tasks = tasks
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.callbacks = callbacks
        self.step = 0
        self.skipped_steps = 0
        # Sums over the current logging window, kept on the device (read at log time only).
        self._weights_sum: Tensor | None = None
        self._cosine_sum: Tensor | None = None
        self._window = 0
        self.best_score = math.nan
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_state: dict[str, Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.run_dir = Path(self.config.run_dir) if self.config.run_dir else None
        self.logger = JsonlLogger(self.run_dir / "metrics.jsonl" if self.run_dir else None)
        self.board = (
            TensorBoardLogger(self.run_dir / "tensorboard")
            if self.config.tensorboard and self.run_dir
            else None
        )
        self._stop = StopRequest()
        monitor = self.config.monitor
        if monitor != "loss":
            task, _, metric = monitor.partition("/")
            if metric not in tasks.task(task).metrics:
                raise ValueError(
                    f"monitor {monitor!r}: task {task!r} has metrics "
                    f"{list(tasks.task(task).metrics)}"
                )
            self.higher_is_better = tasks.directions()[task][metric]
        else:
            self.higher_is_better = False

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: Batch) -> Tensor | None:
        """One optimizer step on ``batch``; returns the detached loss vector ``(T,)`` (on the
        device), or ``None`` when the step was skipped (a non-finite loss, or no task with a
        label in the batch)."""
        if not self.model.training:
            self.model.train()
        batch = batch.to(self.device)
        unused = features_unused() if self.balancer.needs == "losses" else contextlib.nullcontext()
        taps = self._taps()
        with self._autocast(), unused, taps or contextlib.nullcontext():
            outputs = self.model(batch.inputs)
            losses = self.tasks.losses(outputs, batch.targets, batch.masks)
        self.optimizer.zero_grad(set_to_none=True)
        penalty = self.model.penalty()
        if penalty is not None and not losses.skip:
            # The model's own regulariser, never weighted by the balancer; its graph may
            # share the forward's (activations), so it goes first and keeps that graph.
            penalty.backward(retain_graph=True)
        if self.balancer.needs == "losses":
            result = backward(losses, self.balancer)
        elif self.config.level == "representation":
            if outputs.features is None:
                raise ValueError(
                    "the model returned no features; use level='parameter' or a model that "
                    "exposes its shared representation"
                )
            result = backward(
                losses,
                self.balancer,
                features=outputs.features,
                method=self.config.gradient_method,
            )
        else:
            # Branch features let the engine take the shared Jacobian through the trunk alone
            # (checked by the engine); a single features tensor cannot be checked, so it is
            # left out.
            branches = outputs.features if isinstance(outputs.features, Mapping) else None
            result = backward(
                losses,
                self.balancer,
                features=branches,
                shared_params=self.model.shared_parameters(),
                method=self.config.gradient_method,
                taps=taps,
            )
            if taps is not None:
                taps.clear()
        if result.skipped:
            self.skipped_steps += 1
            return None
        self._observe(result.weights, result.gramian)
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return losses.detached()

    def _taps(self) -> LinearTaps | None:
        """The shared linear layers' recorder, for Gramian methods at the parameter level
        (the engine then takes the Gramian from activations; see
        :mod:`polytask.gradients.linear`)."""
        if self.config.level != "parameter" or self.balancer.needs != "gramian":
            return None
        if self._linear_taps is None:
            self._linear_taps = LinearTaps(self.model.shared_modules())
        return self._linear_taps

    def _observe(self, weights: Tensor | None, gramian: Tensor | None) -> None:
        """Add a step's task weights and gradient cosines to the logging window."""
        if weights is None:
            return
        w = weights.detach().double()
        self._weights_sum = w if self._weights_sum is None else self._weights_sum + w
        if gramian is not None:
            g = gramian.detach().double()
            norms = g.diagonal().clamp_min(1e-300).sqrt()
            cosine = g / (norms[:, None] * norms[None, :])
            self._cosine_sum = cosine if self._cosine_sum is None else self._cosine_sum + cosine
        self._window += 1

    def _window_summary(self) -> dict[str, Any]:
        """Mean task weights (and gradient cosines, for Gramian methods) over the window."""
        summary: dict[str, Any] = {}
        if self._window and self._weights_sum is not None:
            mean = (self._weights_sum / self._window).tolist()
            summary["weights"] = dict(zip(self.tasks.names, mean, strict=True))
            if self._cosine_sum is not None:
                summary["cosine"] = (self._cosine_sum / self._window).tolist()
        self._weights_sum, self._cosine_sum, self._window = None, None, 0
        return summary

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(
        self, dataset: TensorTaskDataset | Iterable[Any], batch_size: int | None = None
    ) -> dict[str, Any]:
        """Mean loss and metrics per task on ``dataset`` (the model in eval mode): a
        :class:`~polytask.data.TensorTaskDataset`, or any iterable of batches (a
        ``DataLoader``; items as :func:`~polytask.data.as_batch` reads them).

        Returns:
            ``{"loss": {task: float}, "metrics": {task: {metric: float}}}``.
        """
        self.model.eval()
        metrics = {
            t: {k: m.to(self.device) for k, m in per.items()}
            for t, per in self.tasks.make_metrics().items()
        }
        size = batch_size or self.config.eval_batch_size
        batcher: Iterable[Batch] = (
            IndexBatcher(dataset, size, shuffle=False)
            if isinstance(dataset, TensorTaskDataset)
            else IterableBatches(dataset)  # fences the source's draws off torch's RNG
        )
        # Summed losses and labelled counts per task: a batch's masked mean weighs by its
        # labelled elements, not its rows (labels of per-task data come in clumps).
        totals = torch.zeros(len(self.tasks), device=self.device, dtype=torch.float64)
        counts = torch.zeros_like(totals)
        for batch in batcher:
            batch = batch.to(self.device)
            with self._autocast():
                outputs = self.model(batch.inputs)
            predictions = {k: v.float() for k, v in outputs.predictions.items()}
            losses = self.tasks.losses(predictions, batch.targets, batch.masks)
            assert losses.counts is not None
            totals += losses.detached().double() * losses.counts.double()
            counts += losses.counts.double()
            self.tasks.update_metrics(metrics, predictions, batch.targets, batch.masks)
        # A task with no label in the whole split has no loss (NaN), not 0.
        mean = torch.where(counts > 0, totals / counts.clamp_min(1), torch.nan).tolist()
        return {
            "loss": dict(zip(self.tasks.names, mean, strict=True)),
            "metrics": {
                t: {k: float(m.compute()) for k, m in per.items()} for t, per in metrics.items()
            },
        }

    def score(self, evaluation: dict[str, Any]) -> float:
        """The ``monitor`` value of an :meth:`evaluate` result."""
        if self.config.monitor == "loss":
            # Mean over the tasks that have labels in the split (the others' loss is NaN).
            values = [v for v in evaluation["loss"].values() if not math.isnan(v)]
            return float(sum(values) / len(values)) if values else math.nan
        task, _, metric = self.config.monitor.partition("/")
        return float(evaluation["metrics"][task][metric])

    def _improved(self, score: float) -> bool:
        if math.isnan(self.best_score):
            return True
        return score > self.best_score if self.higher_is_better else score < self.best_score

    # ------------------------------------------------------------------ checkpoints
    def settings(self) -> dict[str, Any]:
        """The settings that define this run, as they are now: the trainer's (less
        :data:`~polytask.training.run_folder.MAY_CHANGE_ON_RESUME`), the model's class and
        architecture, the optimizer's and scheduler's hyper-parameters, the balancer's class
        and options, the tasks, and ``run_settings``. Taken at the start of :meth:`fit` and
        stored in every checkpoint."""
        scheduler = self.scheduler
        return {
            "trainer": {
                k: v for k, v in asdict(self.config).items() if k not in MAY_CHANGE_ON_RESUME
            },
            "model": {
                "class": type(self.model).__name__,
                "architecture": fingerprint({"repr": repr(self.model)}),
            },
            "optimizer": {
                "class": type(self.optimizer).__name__,
                "groups": [_plain(g) for g in self.optimizer.param_groups],
            },
            "scheduler": None
            if scheduler is None
            else {"class": type(scheduler).__name__, **_plain(scheduler.state_dict())},
            "balancer": {"class": type(self.balancer).__name__, **_plain(vars(self.balancer))},
            "tasks": [
                {"name": t.name, "loss": t.loss, "role": t.role, "weight": t.weight}
                for t in self.tasks
            ],
            "run": self.run_settings,
        }

    def check_resume(self, path: str | Path | None = None) -> None:
        """Raise :class:`~polytask.training.run_folder.RunMismatchError` if the checkpoint at
        ``path`` (default: this run folder's) was written under other settings."""
        path = Path(path) if path is not None else self.checkpoint_path()
        if path is not None and path.is_file():
            self._check_settings(ckpt.load(path), self.settings())

    def _check_settings(self, state: dict[str, Any], current: dict[str, Any]) -> None:
        saved = state.get("trainer", {}).get("settings")
        if saved is None:
            warnings.warn(
                "the checkpoint records no settings (written by an older polytask); resuming "
                "without checking that they match",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        differences = settings_differences(saved, current)
        if differences:
            raise RunMismatchError(mismatch_message(self.run_dir, differences))

    def state_dict(self, batcher: Batches) -> dict[str, Any]:
        """Everything needed to continue training exactly from here."""
        return {
            "format": "polytask-checkpoint-1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "balancer": self.balancer.state_dict(),
            "batcher": batcher.state_dict(),
            "rng": ckpt.rng_state(),
            "trainer": {
                "step": self.step,
                "skipped_steps": self.skipped_steps,
                "best_score": self.best_score,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "history": self.history,
                "config": asdict(self.config),
                "settings": self._settings if self._settings is not None else self.settings(),
                "log_size": log_size(self.logger.path),
            },
            "best_model": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any], batcher: Batches) -> None:
        """Restore :meth:`state_dict`; raises naming the mismatch for another model's state."""
        if state.get("format") != "polytask-checkpoint-1":
            raise ValueError("not a polytask checkpoint (missing format tag)")
        own = self.model.state_dict()
        theirs = state["model"]
        missing = sorted(set(own) - set(theirs))
        unexpected = sorted(set(theirs) - set(own))
        shapes = sorted(k for k in set(own) & set(theirs) if own[k].shape != theirs[k].shape)
        if missing or unexpected or shapes:
            raise ValueError(
                "checkpoint is from another model: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing[:5]}" if missing else "",
                        f"unexpected {unexpected[:5]}" if unexpected else "",
                        f"shape differs for {shapes[:5]}" if shapes else "",
                    )
                    if part
                )
            )
        self.model.load_state_dict(theirs)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.balancer.load_state_dict(state["balancer"])
        batcher.load_state_dict(state["batcher"])
        trainer = state["trainer"]
        self.step = trainer["step"]
        self.skipped_steps = trainer["skipped_steps"]
        self.best_score = trainer["best_score"]
        self.best_epoch = trainer["best_epoch"]
        self.bad_epochs = trainer["bad_epochs"]
        self.history = list(trainer["history"])
        self.best_state = state["best_model"]
        ckpt.set_rng_state(state["rng"])
        if "log_size" in trainer:  # records logged after this checkpoint are dropped
            truncate_log(self.logger.path, int(trainer["log_size"]))

    def checkpoint_path(self) -> Path | None:
        """``run_dir/checkpoints/last.pt`` (``None`` without a run folder)."""
        return self.run_dir / "checkpoints" / "last.pt" if self.run_dir else None

    def save_checkpoint(self, batcher: Batches) -> Path | None:
        """Write ``last.pt`` atomically (no-op without a run folder)."""
        path = self.checkpoint_path()
        if path is None:
            return None
        return ckpt.save_atomic(self.state_dict(batcher), path)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: TensorTaskDataset | Iterable[Any],
        val: TensorTaskDataset | Iterable[Any] | None = None,
        *,
        resume: bool | str | Path = False,
        restore_best: bool = True,
        batcher: Batches | None = None,
    ) -> FitResult:
        """Train for ``config.epochs`` epochs (or ``max_steps`` steps).

        Args:
            train: training data: a :class:`~polytask.data.TensorTaskDataset` (batched by
                index, the fast path, exact resume), or any re-iterable source of batches - a
                ``torch.utils.data.DataLoader`` or a stream - whose items are
                ``(inputs, {task: targets})`` (see :class:`~polytask.data.IterableBatches`;
                ``config.batch_size`` is then the source's business).
            val: validation data for model selection and early stopping (never the test set),
                either kind.
            resume: ``True`` to continue from ``run_dir/checkpoints/last.pt`` if it exists, or
                a checkpoint path to continue from.
            restore_best: load the best validation weights into the model at the end.
            batcher: how ``train`` is batched (default: an
                :class:`~polytask.data.IndexBatcher` of ``config.batch_size``, seeded by
                ``config.seed``); for example a
                :class:`~polytask.data.samplers.GroupBatcher` with a task sampler when tasks
                have their own datasets. Its state is checkpointed with the run.
        """
        if isinstance(train, TensorTaskDataset):
            missing = [t for t in self.tasks.names if t not in train.targets]
            if missing:
                raise KeyError(f"training data has no targets for task(s) {missing}")
        # One process at a time in a run folder (a lock the kernel drops with the process).
        with RunFolder(self.run_dir) if self.run_dir else contextlib.nullcontext():
            return self._fit(train, val, resume, restore_best, batcher)

    def _fit(
        self,
        train: TensorTaskDataset | Iterable[Any],
        val: TensorTaskDataset | Iterable[Any] | None,
        resume: bool | str | Path,
        restore_best: bool,
        batcher: Batches | None,
    ) -> FitResult:
        cfg = self.config
        self._settings = self.settings()
        if batcher is None:
            batcher = (
                IndexBatcher(train, cfg.batch_size, shuffle=True, seed=cfg.seed)
                if isinstance(train, TensorTaskDataset)
                else IterableBatches(train)
            )
        if cfg.keep_freed_memory and self.device.type == "cpu" and glibc_version() is not None:
            keep_freed_memory()
        torch.manual_seed(cfg.seed)
        resume_path = (
            self.checkpoint_path() if resume is True else (Path(resume) if resume else None)
        )
        if resume_path is not None and resume_path.is_file():
            state = ckpt.load(resume_path, self.device)
            self._check_settings(state, self._settings)
            self.load_state_dict(state, batcher)
            self.logger.write("resume", step=self.step, checkpoint=str(resume_path))
        elif resume and resume is not True:
            raise FileNotFoundError(f"no checkpoint to resume from at {resume_path}")
        else:
            self.logger.write(
                "start",
                config=asdict(cfg),
                tasks=self.tasks.names,
                balancer=type(self.balancer).__name__,
                parameters=sum(p.numel() for p in self.model.parameters()),
            )
        stopped_early = False
        with self._stop.listening():
            while batcher.epoch < cfg.epochs:
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    break
                epoch = batcher.epoch + 1
                done = self._run_epoch(batcher, epoch)
                if not done:
                    break
                self.balancer.epoch_end()
                record: dict[str, Any] = {"epoch": epoch, "step": self.step}
                if val is not None:
                    evaluation = self.evaluate(val)
                    score = self.score(evaluation)
                    record["val"] = evaluation
                    record["monitor"] = {cfg.monitor: score}
                    self.balancer.observe_metrics(evaluation["metrics"])
                    if self._improved(score):
                        self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
                        self.best_state = {
                            k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
                            for k, v in self.model.state_dict().items()
                        }
                    else:
                        self.bad_epochs += 1
                self.history.append(record)
                self.logger.write("epoch", **record)
                if self.board is not None and val is not None:
                    self.board.scalars("val", record["val"], self.step)
                self.save_checkpoint(batcher)
                if cfg.patience is not None and self.bad_epochs >= cfg.patience:
                    stopped_early = True
                    self.logger.write("early_stop", epoch=epoch, best_epoch=self.best_epoch)
                    break
        if restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return FitResult(
            self.best_epoch,
            self.best_score,
            list(self.history),
            self.step,
            self.skipped_steps,
            stopped_early,
        )

    def _run_epoch(self, batcher: Batches, epoch: int) -> bool:
        """Train the rest of the current epoch; ``False`` if stopped before its end."""
        cfg = self.config
        running = torch.zeros(len(self.tasks), device=self.device, dtype=torch.float64)
        count = 0
        bar = tqdm(
            total=len(batcher),
            initial=batcher.position,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not cfg.progress,
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        started = time.perf_counter()
        try:
            for batch in batcher:
                losses = self.train_step(batch)
                bar.update(1)
                if losses is not None:
                    running += losses.double()
                    count += 1
                if self.step % cfg.log_every == 0 and count:
                    mean = (running / count).tolist()
                    values = dict(zip(self.tasks.names, mean, strict=True))
                    self.logger.write(
                        "train", epoch=epoch, step=self.step, loss=values, **self._window_summary()
                    )
                    if self.board is not None:
                        self.board.scalars("train/loss", values, self.step)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
                    running.zero_()
                    count = 0
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint(batcher)
                try:
                    for callback in self.callbacks:
                        callback(self, self.step)
                except StopTrainingSignal:
                    self.save_checkpoint(batcher)
                    return False
                if self._stop.signum is not None:
                    path = self.save_checkpoint(batcher)
                    raise TrainingInterrupted(self._stop.signum, str(path) if path else None)
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    self.save_checkpoint(batcher)
                    return False
        finally:
            bar.close()
        self.logger.write("epoch_time", epoch=epoch, seconds=time.perf_counter() - started)
        return True


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are plain settings (numbers, strings, booleans, None,
    and lists of them), less private and bookkeeping ones."""
    skip = {"params", "task_names", "bound_task_names", "roles", "prior_weights", "training"}
    skip |= {"last_epoch"}  # a scheduler's progress

    def plain(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, bool | int | float | str)

    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
        if not k.startswith("_") and k not in skip and plain(v)
    }
