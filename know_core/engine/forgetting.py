"""Structured forgetting: pre-train Θ0 on D0, then fine-tune sequentially on nested D1 ⊃ D2 ⊃ … under a stage budget.

The result is a :class:`Trajectory` [Θ0 … Θ_{S−1}] with per-stage sizes and losses and a measured forgetting report
(``measure.py``), plus — where the source pool allows — the film's continuation the other way (the *warm oracles*
Θ_{−k}, trained on real supersets with the same budget) and the *same-data control film* C_k (Θ0 trained further on D0
with that budget), recorded by ``continuation.py``. Docs: docs/forgetting.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from know_core.engine.config import ForgetConfig
from know_core.data import Dataset, load_dataset, nested_order, stage_sizes
from know_core.common.errors import ConfigError
from know_core.common.ledger import Ledger
from know_core.engine.measure import ForgettingReport, measure_film
from know_core.models import GROUPS, check_model, create_model, param_groups
from know_core.engine.stages import StageBudget, train_stage
from know_core.engine.windows import flatten
from know_core.engine.train import (
    Hooks,
    evaluate,
    evaluate_samples,
    make_optimizer,
    pick_device,
    set_lr,
    steps_per_epoch,
    train_epoch,
)

FORGETTING_TOLERANCE = 0.005  # endpoint rule for films recorded without per-sample figures (older runs)
WARM_MAX_STEPS = 3  # a forget run continues the film at most ×(1/r)^3 the other way
PLATEAU_TOL = 0.01  # pre-training to a plateau: the training loss must improve by 1 % to count


@dataclass
class Continuation:
    """A film recorded beside the forgetting film: the warm oracles Θ_{−1}, Θ_{−2} … or the control film C_1, C_2 …"""

    states: list[dict[str, torch.Tensor]]
    sizes: list[int]
    source_acc: list[float]
    source_loss: list[float]


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
    report: ForgettingReport | None = None
    warm: Continuation | None = None
    control: Continuation | None = None
    stage_steps: list[int] = field(default_factory=list)
    cap_hit: list[bool] = field(default_factory=list)

    @property
    def forgot(self) -> bool:
        if self.report is not None:
            return self.report.forgot
        return self.source_acc[-1] < self.source_acc[0] - FORGETTING_TOLERANCE

    def verdict(self) -> str:
        if self.report is not None:
            return self.report.verdict()
        first, last = self.source_acc[0], self.source_acc[-1]
        if self.forgot:
            return f"forgetting happened: source accuracy fell {first:.3f} → {last:.3f} along the stages"
        return (f"NO forgetting: source accuracy went {first:.3f} → {last:.3f} along the stages; Θ0 may be "
                "under-trained, and running this film backwards would undo learning rather than add knowledge")


@dataclass
class SourceSplit:
    """Index sets into the source training set: validation (to judge convergence) and the nested-subset order."""

    val: torch.Tensor
    pool: torch.Tensor  # nested order over the rest; D0 is pool[:n0], D_s is pool[:⌊n0·r^s⌋], D_{−k} pool[:n0/r^k]
    n0: int


def source_split(ds: Dataset, cfg: ForgetConfig) -> SourceSplit:
    order = nested_order(ds.y_train, cfg.seed, cfg.balanced)
    n_val = max(ds.num_classes, int(round(len(order) * cfg.pretrain.val_fraction)))
    pool = order[n_val:]
    return SourceSplit(order[:n_val], pool, int(len(pool) * cfg.d0_fraction))


def resolved_batch_size(cfg: ForgetConfig, ds: Dataset) -> int:
    return cfg.optim.batch_size or ds.default_batch_size


def warm_sizes(n0: int, r: float, pool: int, most: int = WARM_MAX_STEPS) -> list[int]:
    """|D_{−k}| = round(|D0| / r^k) for k = 1 … while the pool holds it (at most ``most``)."""
    out = []
    for k in range(1, most + 1):
        n = int(round(n0 / r ** k))
        if n > pool:
            break
        out.append(n)
    return out


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
    """Train until validation accuracy stops improving (keeping the best-validation weights), until the training
    loss reaches a plateau (``pretrain.until="plateau"``), or exactly ``max_epochs``."""
    pc = cfg.pretrain
    history: list[dict[str, float]] = []
    best, best_state, stale, best_loss = (-1.0, 0.0), None, 0, float("inf")
    total = pc.max_epochs * steps_per_epoch(len(y), batch_size)
    step = 0
    for epoch in range(1, pc.max_epochs + 1):
        loss, step = train_epoch(model, optimizer, x, y, batch_size, generator, hooks, phase, step, total,
                                 cfg.augment)
        val_loss, val_acc = evaluate(model, x_val, y_val)
        history.append({"epoch": epoch, "train_loss": loss, "val_loss": val_loss, "val_acc": val_acc})
        hooks.report(phase, step, total, epoch=epoch, train_loss=loss, val_acc=val_acc)
        if pc.until == "plateau":
            stale = 0 if loss < best_loss * (1 - PLATEAU_TOL) else stale + 1
            best_loss = min(best_loss, loss)
        else:
            # Patience counts epochs without an accuracy gain; among equally accurate epochs the lower loss is kept
            # (on small validation sets accuracy ties are common, and the loss can shrink forever on separable data).
            stale = 0 if val_acc > best[0] else stale + 1
            if (val_acc, -val_loss) > best:
                best, best_state = (val_acc, -val_loss), copy.deepcopy(model.state_dict())
        if pc.early_stop and stale >= pc.patience:
            break
    if pc.early_stop and pc.until == "val_acc" and best_state is not None:
        model.load_state_dict(best_state)
    return history


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's parameters and buffers, safe to keep while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def predicted_flat(state: dict[str, torch.Tensor], groups: dict[str, str]) -> torch.Tensor:
    """The predicted groups' weights (conv / fc / bias) of ``state`` as one float64 vector."""
    return flatten(state, [n for n, g in groups.items() if g in GROUPS])


def preflight(cfg: ForgetConfig, warm_steps: int = WARM_MAX_STEPS) -> tuple[Dataset, SourceSplit, list[int]]:
    """What the data decides before any work starts: the dataset, the stage sizes, and a warm oracle demanded
    (``warm="on"``) where the pool cannot hold the superset. The config's values were validated at the boundary."""
    ds = load_dataset(cfg.dataset, cfg.data_root)
    split = source_split(ds, cfg)
    check_model(cfg.model, ds.input_shape, ds.num_classes, resolved_batch_size(cfg, ds), pick_device(cfg.device))
    sizes = check_stage_sizes(cfg, ds, split.n0)
    if cfg.warm == "on" and len(warm_sizes(split.n0, cfg.r, len(split.pool), warm_steps)) < warm_steps:
        need = int(round(split.n0 / cfg.r ** warm_steps))
        raise ConfigError(f"warm oracles: ×{(1 / cfg.r) ** warm_steps:g} needs {need} source images but the pool holds "
                          f"{len(split.pool)}; lower d0_fraction, fewer scales, or oracles/warm auto or off")
    return ds, split, sizes


@dataclass
class FilmContext:
    """What every film of one run trains with: resident data, the split, the budget, the recipe."""

    cfg: ForgetConfig
    ds: Dataset
    split: SourceSplit
    sizes: list[int]
    device: torch.device
    batch: int
    budget: StageBudget
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def forget_lr(self) -> float:
        return self.cfg.forget_lr or self.cfg.optim.lr

    def subset(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.split.pool[:n].to(self.device)
        return self.x[idx], self.y[idx]


def run_forgetting(cfg: ForgetConfig, hooks: Hooks | None = None,
                   warm_steps: int = WARM_MAX_STEPS) -> tuple[Trajectory, Ledger]:
    """Pre-train Θ0, record the forgetting film (and, unless ``warm="off"``, the warm oracles and the control film).
    Returns the trajectory and its :class:`~know_core.common.ledger.Ledger` (seconds per phase)."""
    from know_core.engine.continuation import record_control, record_warm

    ds, split, sizes = preflight(cfg, warm_steps)
    hooks = hooks or Hooks()
    device = pick_device(cfg.device)
    ctx = FilmContext(cfg, ds, split, sizes, device, resolved_batch_size(cfg, ds), cfg.stage_budget,
                      ds.x_train.to(device), ds.y_train.to(device), ds.x_test.to(device), ds.y_test.to(device))
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    timings = Ledger(device)

    timings.start("pretrain")
    optimizer = make_optimizer(model, cfg.optim)
    val = split.val.to(device)
    history = pretrain(model, optimizer, *ctx.subset(sizes[0]), ctx.x[val], ctx.y[val], cfg, ctx.batch, gen, hooks)
    timings.stop("pretrain")
    theta0_opt = copy.deepcopy(optimizer.state_dict())

    timings.start("forgetting")
    states = [cpu_state(model)]
    losses, correct = [], []
    removed_acc: list[float | None] = [None]

    def measure(m: nn.Module) -> None:
        loss, ok = evaluate_samples(m, ctx.x_test, ctx.y_test)
        losses.append(loss)
        correct.append(ok)

    measure(model)
    removed_last = split.pool[sizes[-1]:sizes[0]].to(device)  # Θ0 on what the last stage no longer sees
    removed_theta0 = evaluate(model, ctx.x[removed_last], ctx.y[removed_last])[1] if len(sizes) > 1 else None
    train_loss, stage_steps, cap_hit = [history[-1]["train_loss"]], [0], [False]
    if cfg.carry_optimizer:
        set_lr(optimizer, ctx.forget_lr)
    total = sum(ctx.budget.planned_steps(n, ctx.batch) for n in sizes[1:])
    step = 0
    for s, size in enumerate(sizes[1:], start=1):
        if not cfg.carry_optimizer:
            optimizer = make_optimizer(model, cfg.optim, ctx.forget_lr)
        result, step = train_stage(model, optimizer, *ctx.subset(size), ctx.budget, ctx.batch, gen, hooks,
                                   "forgetting", step, total, cfg.augment)
        measure(model)
        removed = split.pool[size:sizes[0]].to(device)
        removed_acc.append(evaluate(model, ctx.x[removed], ctx.y[removed])[1])
        states.append(cpu_state(model))
        train_loss.append(result.train_loss)
        stage_steps.append(result.steps)
        cap_hit.append(result.cap_hit)
        hooks.report("forgetting", step, total, stage=s, source_loss=float(losses[-1].mean()))
    groups = param_groups(model)
    report = measure_film(losses, correct, removed_acc, removed_theta0, [predicted_flat(st, groups) for st in states])
    timings.stop("forgetting")

    traj = Trajectory(states, groups, sizes, train_loss, report.source_acc, report.source_loss, history, report,
                      stage_steps=stage_steps, cap_hit=cap_hit)
    if cfg.warm != "off":
        with timings.phase("warm"):
            supersets = warm_sizes(split.n0, cfg.r, len(split.pool), warm_steps)
            traj.warm = record_warm(ctx, states[0], theta0_opt, supersets, hooks) if supersets else None
        with timings.phase("control"):
            n_control = max(len(sizes) - 1, len(supersets))
            traj.control = record_control(ctx, states[0], theta0_opt, n_control, hooks)
    return traj, timings
