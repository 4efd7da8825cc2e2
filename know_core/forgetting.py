"""Structured forgetting: pre-train Θ0 to convergence on D0, then fine-tune sequentially on nested D1 ⊃ D2 ⊃ ….

The result is a :class:`Trajectory` [Θ0 … Θ_{S−1}] with per-stage sizes, train loss and source test accuracy, and a
verdict on whether the model actually forgot (source accuracy falling along the stages). docs/method.md records that an
under-trained Θ0 keeps learning instead; the verdict makes that visible instead of silently extrapolating backwards.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import ForgetConfig
from .data import Dataset, load_dataset, nested_order, stage_sizes
from .errors import ConfigError
from .models import create_model, param_groups
from .train import Hooks, evaluate, make_optimizer, pick_device, set_lr, steps_per_epoch, train_epoch

FORGETTING_TOLERANCE = 0.005  # source accuracy must fall by more than this (absolute) to count as forgetting


@dataclass
class Trajectory:
    """Θ0 … Θ_{S−1} as CPU state dicts (parameters and buffers), with what was measured at each stage."""

    states: list[dict[str, torch.Tensor]]
    groups: dict[str, str]  # parameter name -> conv / fc / bias / norm
    stage_sizes: list[int]
    train_loss: list[float]  # stage 0: Θ0's last pre-training epoch
    source_acc: list[float]
    source_loss: list[float]
    pretrain_history: list[dict[str, float]] = field(default_factory=list)

    @property
    def forgot(self) -> bool:
        return self.source_acc[-1] < self.source_acc[0] - FORGETTING_TOLERANCE

    def verdict(self) -> str:
        first, last = self.source_acc[0], self.source_acc[-1]
        if self.forgot:
            return f"forgetting happened: source accuracy fell {first:.3f} → {last:.3f} along the stages"
        return (f"NO forgetting: source accuracy went {first:.3f} → {last:.3f} along the stages; Θ0 may be "
                "under-trained, and running this film backwards would undo learning rather than add knowledge")


@dataclass
class SourceSplit:
    """Index sets into the source training set: validation (to judge convergence) and the nested-subset order."""

    val: torch.Tensor
    pool: torch.Tensor  # nested order over the rest; D0 is pool[:n0], D_s is pool[:⌊n0·r^s⌋]
    n0: int


def source_split(ds: Dataset, cfg: ForgetConfig) -> SourceSplit:
    order = nested_order(ds.y_train, cfg.seed, cfg.balanced)
    n_val = max(ds.num_classes, int(round(len(order) * cfg.pretrain.val_fraction)))
    pool = order[n_val:]
    return SourceSplit(order[:n_val], pool, int(len(pool) * cfg.d0_fraction))


def resolved_batch_size(cfg: ForgetConfig, ds: Dataset) -> int:
    return cfg.optim.batch_size or ds.default_batch_size


def check_stage_sizes(cfg: ForgetConfig, ds: Dataset, n0: int) -> list[int]:
    """|D_s| for every stage, or a ConfigError naming the first stage too small for a batch or the class count."""
    sizes = stage_sizes(n0, cfg.r, cfg.stages)
    batch = resolved_batch_size(cfg, ds)
    for s, size in enumerate(sizes):
        if size < batch or size < ds.num_classes:
            raise ConfigError(
                f"stage {s} would hold {size} samples (|D0|={n0}, r={cfg.r}, S={cfg.stages}), fewer than "
                f"{'one batch (' + str(batch) + ')' if size < batch else 'the ' + str(ds.num_classes) + ' classes'}; "
                "use fewer stages, a larger r, a smaller batch size or more data")
    return sizes


def pretrain(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             x_val: torch.Tensor, y_val: torch.Tensor, cfg: ForgetConfig, batch_size: int,
             generator: torch.Generator, hooks: Hooks, phase: str = "pre-training") -> list[dict[str, float]]:
    """Train until validation accuracy stops improving (or exactly ``max_epochs``); keeps the best-validation weights."""
    pc = cfg.pretrain
    history: list[dict[str, float]] = []
    best, best_state, stale = (-1.0, 0.0), None, 0
    total = pc.max_epochs * steps_per_epoch(len(y), batch_size)
    step = 0
    for epoch in range(1, pc.max_epochs + 1):
        loss, step = train_epoch(model, optimizer, x, y, batch_size, generator, hooks, phase, step, total)
        val_loss, val_acc = evaluate(model, x_val, y_val)
        history.append({"epoch": epoch, "train_loss": loss, "val_loss": val_loss, "val_acc": val_acc})
        hooks.report(phase, step, total, epoch=epoch, train_loss=loss, val_acc=val_acc)
        # Patience counts epochs without an accuracy gain; among equally accurate epochs the lower loss is kept
        # (on small validation sets accuracy ties are common, and the loss can shrink forever on separable data).
        stale = 0 if val_acc > best[0] else stale + 1
        if (val_acc, -val_loss) > best:
            best, best_state = (val_acc, -val_loss), copy.deepcopy(model.state_dict())
        if pc.early_stop and stale >= pc.patience:
            break
    if pc.early_stop and best_state is not None:
        model.load_state_dict(best_state)
    return history


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's parameters and buffers, safe to keep while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def preflight(cfg: ForgetConfig) -> tuple[Dataset, SourceSplit, list[int]]:
    """Everything that can be refused before any work starts: config values, the dataset, the stage sizes."""
    cfg.validate()
    ds = load_dataset(cfg.dataset, cfg.data_root)
    split = source_split(ds, cfg)
    pick_device(cfg.device)
    return ds, split, check_stage_sizes(cfg, ds, split.n0)


def run_forgetting(cfg: ForgetConfig, hooks: Hooks | None = None) -> tuple[Trajectory, dict[str, float]]:
    """Pre-train Θ0, record the forgetting trajectory. Returns it with timings (seconds per phase)."""
    ds, split, sizes = preflight(cfg)
    hooks = hooks or Hooks()
    batch = resolved_batch_size(cfg, ds)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all, y_all = ds.x_train.to(device), ds.y_train.to(device)
    x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
    subset = split.pool.to(device)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    optimizer = make_optimizer(model, cfg.optim)
    d0 = subset[:sizes[0]]
    history = pretrain(model, optimizer, x_all[d0], y_all[d0], x_all[split.val.to(device)],
                       y_all[split.val.to(device)], cfg, batch, gen, hooks)
    timings["pretrain_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    states = [cpu_state(model)]
    loss0, acc0 = evaluate(model, x_test, y_test)
    train_loss, source_acc, source_loss = [history[-1]["train_loss"]], [acc0], [loss0]
    forget_lr = cfg.forget_lr or cfg.optim.lr
    if cfg.carry_optimizer:
        set_lr(optimizer, forget_lr)
    total = sum(steps_per_epoch(n, batch) * cfg.epochs for n in sizes[1:])
    step = 0
    for s, size in enumerate(sizes[1:], start=1):
        if not cfg.carry_optimizer:
            optimizer = make_optimizer(model, cfg.optim, forget_lr)
        ds_idx = subset[:size]
        xs, ys = x_all[ds_idx], y_all[ds_idx]
        for _ in range(cfg.epochs):
            loss, step = train_epoch(model, optimizer, xs, ys, batch, gen, hooks, "forgetting", step, total)
        test_loss, test_acc = evaluate(model, x_test, y_test)
        states.append(cpu_state(model))
        train_loss.append(loss)
        source_acc.append(test_acc)
        source_loss.append(test_loss)
        hooks.report("forgetting", step, total, stage=s, source_acc=test_acc)
    timings["forgetting_s"] = time.perf_counter() - t0
    traj = Trajectory(states, param_groups(model), sizes, train_loss, source_acc, source_loss, history)
    return traj, timings
