"""Structured forgetting: pre-train Θ0 on D0, then fine-tune sequentially on nested D1 ⊃ D2 ⊃ … under a stage budget.

The result is a :class:`Trajectory` [Θ0 … Θ_{S−1}] with per-stage sizes and losses and a measured forgetting report
(``measure.py``), plus — where the source pool allows — the film's continuation the other way (the *warm oracles*
Θ_{−k}, trained on real supersets with the same budget) and the *same-data control film* C_k (Θ0 trained further on D0
with that budget), recorded by ``continuation.py``. Docs: docs/forgetting.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from know_core.common.errors import ConfigError
from know_core.common.ledger import Ledger
from know_core.data import Dataset, load_dataset, nested_order, stage_sizes
from know_core.engine.config import ForgetConfig
from know_core.engine.continuation import record_control, record_warm
from know_core.engine.filmcontext import Continuation, FilmContext, SourceSplit, cpu_state  # noqa: F401  (re-exported)
from know_core.engine.measure import ForgettingReport, measure_film
from know_core.engine.stacked import StackedNet
from know_core.engine.stages import parse_budget, pretrain_members, train_stage
from know_core.engine.train import Hooks, Loss, Members, evaluate, evaluate_samples, make_optimizer, pick_device, set_lr
from know_core.engine.usermodel import check_user_model
from know_core.engine.windows import flatten
from know_core.models import GROUPS, check_model, param_groups

FORGETTING_TOLERANCE = 0.005  # endpoint rule for films recorded without per-sample figures (older runs)
WARM_MAX_STEPS = 3  # a forget run continues the film at most ×(1/r)^3 the other way


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
    """:func:`pretrain_members` for one model on all of ``x``, ``y``."""
    m = Members([model], x, y, batch_size, cfg.augment, hooks)
    return pretrain_members(m, optimizer, m.everything(), [(x_val, y_val)], cfg, [generator], phase)[0]


def predicted_flat(state: dict[str, torch.Tensor], groups: dict[str, str]) -> torch.Tensor:
    """The predicted groups' weights (conv / fc / bias) of ``state`` as one float64 vector."""
    return flatten(state, [n for n, g in groups.items() if g in GROUPS])


def preflight(cfg: ForgetConfig, warm_steps: int = WARM_MAX_STEPS) -> tuple[Dataset, SourceSplit, list[int]]:
    """What the data decides before any work starts: the dataset, the stage sizes, and a warm oracle demanded
    (``warm="on"``) where the pool cannot hold the superset. The config's values were validated at the boundary."""
    ds = load_dataset(cfg.dataset, cfg.data_root)
    check_model(cfg.model, ds.input_shape, ds.num_classes, resolved_batch_size(cfg, ds), pick_device(cfg.device))
    return (ds, *check_film(cfg, ds, warm_steps))


def check_film(cfg: ForgetConfig, ds: Dataset, warm_steps: int = WARM_MAX_STEPS) -> tuple[SourceSplit, list[int]]:
    """The split and stage sizes of ``cfg`` on ``ds`` (any dataset, registered or the user's), or a ConfigError for a
    stage too small or a warm oracle demanded (``warm="on"``) that the pool cannot hold."""
    split = source_split(ds, cfg)
    sizes = check_stage_sizes(cfg, ds, split.n0)
    if cfg.warm == "on" and len(warm_sizes(split.n0, cfg.r, len(split.pool), warm_steps)) < warm_steps:
        need = int(round(split.n0 / cfg.r ** warm_steps))
        raise ConfigError(f"warm oracles: ×{(1 / cfg.r) ** warm_steps:g} needs {need} source images but the pool holds "
                          f"{len(split.pool)}; lower d0_fraction, fewer scales, or oracles/warm auto or off")
    return split, sizes


def run_forgetting(cfg: ForgetConfig, hooks: Hooks | None = None,
                   warm_steps: int = WARM_MAX_STEPS) -> tuple[Trajectory, Ledger]:
    """Pre-train Θ0, record the forgetting film (and, unless ``warm="off"``, the warm oracles and the control film).
    Returns the trajectory and its :class:`~know_core.common.ledger.Ledger` (seconds per phase)."""
    trajs, timings = run_members([cfg], hooks, warm_steps)
    return trajs[0], timings


def run_members(cfgs: list[ForgetConfig], hooks: Hooks | None = None, warm_steps: int = WARM_MAX_STEPS,
                exact: bool = True) -> tuple[list[Trajectory], Ledger]:
    """:func:`run_forgetting` for K configs that differ in the seed only, trained as K members of one loop (K > 1:
    stackable models only, ``batched.py`` checks). ``exact``: see ``stacked.StackedNet``."""
    flights = [preflight(c, warm_steps) for c in cfgs]
    return _record(cfgs, flights[0][0], [f[1] for f in flights], flights[0][2], hooks, warm_steps, exact)


def run_user(cfg: ForgetConfig, model: nn.Module, ds: Dataset, hooks: Hooks | None = None,
             loss: Loss | None = None, warm_steps: int = WARM_MAX_STEPS) -> tuple[Trajectory, Ledger]:
    """:func:`run_forgetting` on a network and data that are not registered: Θ0 is pre-trained from a deep copy of
    ``model`` (left untouched), and every film starts from a copy; ``ds`` is the data already resident as tensors
    (``data.resident``); ``loss(logits, labels)`` the training loss (cross-entropy by default; the verdict always
    measures test cross-entropy). ``cfg.model`` and ``cfg.dataset`` only name them. Checked first
    (``usermodel.check_user_model``)."""
    loss = loss or nn.functional.cross_entropy
    split, sizes = preflight_user(cfg, model, ds, loss, warm_steps)
    trajs, timings = _record([cfg], ds, [split], sizes, hooks, warm_steps, True, lambda: copy.deepcopy(model), loss)
    return trajs[0], timings


def preflight_user(cfg: ForgetConfig, model: nn.Module, ds: Dataset, loss: Loss | None = None,
                   warm_steps: int = WARM_MAX_STEPS) -> tuple[SourceSplit, list[int]]:
    """:func:`preflight` for :func:`run_user`: the split and stage sizes, and the model checked on the data."""
    split, sizes = check_film(cfg, ds, warm_steps)
    check_user_model(model, ds, resolved_batch_size(cfg, ds), pick_device(cfg.device),
                     loss or nn.functional.cross_entropy)
    return split, sizes


def _record(cfgs: list[ForgetConfig], ds: Dataset, splits: list[SourceSplit], sizes: list[int], hooks: Hooks | None,
            warm_steps: int, exact: bool, factory: Callable[[], nn.Module] | None = None,
            loss: Loss | None = None) -> tuple[list[Trajectory], Ledger]:
    """Pre-train, forget, and record the warm and control films of every member: the one recording loop."""
    cfg, split = cfgs[0], splits[0]
    device = pick_device(cfg.device)
    ctx = FilmContext(cfgs, ds, splits, sizes, device, resolved_batch_size(cfg, ds),
                      parse_budget(cfg.stage_budget), ds.x_train.to(device), ds.y_train.to(device),
                      ds.x_test.to(device), ds.y_test.to(device), hooks or Hooks(), factory=factory,
                      loss=loss or nn.functional.cross_entropy)
    models = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(ctx.new_model())
    ctx.net = StackedNet(models[0], exact) if len(models) > 1 else None
    m = ctx.members(models)
    gens = [torch.Generator().manual_seed(c.seed) for c in cfgs]
    timings = Ledger(device)

    timings.start("pretrain")
    optimizer = make_optimizer(models, cfg.optim)
    vals = [(ctx.x[v], ctx.y[v]) for v in (s.val.to(device) for s in splits)]
    histories = pretrain_members(m, optimizer, ctx.subsets(sizes[0]), vals, cfg, gens)
    timings.stop("pretrain")
    theta0_opt = copy.deepcopy(optimizer.state_dict())

    with timings.phase("forgetting"):
        trajs = _forget(ctx, m, optimizer, gens, histories)
    if cfg.warm != "off":
        theta0 = [t.states[0] for t in trajs]
        with timings.phase("warm"):
            supersets = warm_sizes(split.n0, cfg.r, len(split.pool), warm_steps)
            warm = record_warm(ctx, theta0, theta0_opt, supersets) if supersets else [None] * len(trajs)
        with timings.phase("control"):
            control = record_control(ctx, theta0, theta0_opt, max(len(sizes) - 1, len(supersets)))
        for traj, w, c in zip(trajs, warm, control):
            traj.warm, traj.control = w, c
    return trajs, timings


def _forget(ctx: FilmContext, m: Members, optimizer: torch.optim.Optimizer, gens: list[torch.Generator],
            histories: list[list[dict[str, float]]]) -> list[Trajectory]:
    """The forgetting stages of every member, each measured on the test set and on what its stages no longer see."""
    cfg, sizes, k = ctx.cfg, ctx.sizes, m.k
    states = [[cpu_state(model)] for model in m.models]
    losses: list[list[torch.Tensor]] = [[] for _ in range(k)]
    correct: list[list[torch.Tensor]] = [[] for _ in range(k)]
    removed_acc: list[list[float | None]] = [[None] for _ in range(k)]

    def measure(j: int, size: int | None) -> float | None:
        """Member j's per-sample test figures; returns its accuracy on the pool between ``size`` and |D0|."""
        loss, ok = evaluate_samples(m.models[j], ctx.x_test, ctx.y_test)
        losses[j].append(loss)
        correct[j].append(ok)
        if size is None:
            return None
        removed = ctx.splits[j].pool[size:sizes[0]].to(ctx.device)
        return evaluate(m.models[j], ctx.x[removed], ctx.y[removed])[1]

    # Θ0 measured, and its accuracy on what the last stage no longer sees
    removed_theta0 = [measure(j, sizes[-1] if len(sizes) > 1 else None) for j in range(k)]
    train_loss = [[h[-1]["train_loss"]] for h in histories]
    stage_steps, cap_hit = [[0] for _ in range(k)], [[False] for _ in range(k)]
    if cfg.carry_optimizer:
        set_lr(optimizer, ctx.forget_lr)
    total = sum(ctx.budget.planned_steps(n, ctx.batch) for n in sizes[1:])
    step = 0
    for s, size in enumerate(sizes[1:], start=1):
        if not cfg.carry_optimizer:
            optimizer = make_optimizer(m.models, cfg.optim, ctx.forget_lr)
        results, step = train_stage(m, optimizer, ctx.subsets(size), ctx.budget, gens, "forgetting", step, total)
        for j, result in enumerate(results):
            removed_acc[j].append(measure(j, size))
            states[j].append(cpu_state(m.models[j]))
            train_loss[j].append(result.train_loss)
            stage_steps[j].append(result.steps)
            cap_hit[j].append(result.cap_hit)
        ctx.hooks.report("forgetting", step, total, stage=s, source_loss=sum(float(x[-1].mean()) for x in losses) / k)
    groups = param_groups(m.models[0])
    trajs = []
    for j in range(k):
        report = measure_film(losses[j], correct[j], removed_acc[j], removed_theta0[j],
                              [predicted_flat(st, groups) for st in states[j]])
        trajs.append(Trajectory(states[j], groups, sizes, train_loss[j], report.source_acc, report.source_loss,
                                histories[j], report, stage_steps=stage_steps[j], cap_hit=cap_hit[j]))
    return trajs
