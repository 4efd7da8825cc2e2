"""Seed-batched forgetting runs: many seeds of one configuration trained as one stacked model.

``run_forgetting_batched(cfgs)`` gives, for every config, what ``forgetting.run_forgetting(cfg)`` gives (Θ0 by the
same early-stopping rule, the forgetting film, the warm oracles and the control film), bit for bit with one thread
(tests/test_batched.py; with more, the batched kernels split their sums otherwise and the weights drift by rounding
amplified over the steps): each member has its own initialisation, subset order, generator (shuffles, augmentation),
optimiser state and stopping epoch (members that stop early sit out, masked, while the others go on). What differs
is the cost: on small models a training step is mostly fixed overhead, and K members share one step's overhead.

``batchable(cfgs)`` says whether the runs qualify (same config but the seed, a model ``stacked.py`` covers) and why
not. Docs: docs/forgetting.md, "Seed-batched runs".
"""

from __future__ import annotations

import dataclasses
import time

import torch

from know_core.engine.config import ForgetConfig, to_dict
from know_core.engine.continuation import CONTROL_SEED_OFFSET, WARM_SEED_OFFSET
from know_core.data import load_dataset
from know_core.common.errors import ConfigError
from know_core.engine.forgetting import (
    WARM_MAX_STEPS,
    Continuation,
    PLATEAU_TOL,
    Trajectory,
    predicted_flat,
    preflight,
    resolved_batch_size,
    run_forgetting,
    warm_sizes,
)
from know_core.engine.measure import measure_film
from know_core.models import create_model, param_groups
from know_core.engine.stacked import StackedNet, StackedOptimizer, stack_support
from know_core.engine.stacked_train import Members, train_epoch, train_stage
from know_core.engine.train import Hooks, evaluate, evaluate_samples, pick_device, steps_per_epoch


def batchable(cfgs: list[ForgetConfig]) -> tuple[bool, str]:
    """(True, what will happen) when ``cfgs`` can run as one stacked model, else (False, why not)."""
    if len(cfgs) < 2:
        return False, "a single run: nothing to batch"
    base = to_dict(dataclasses.replace(cfgs[0], seed=0))
    differ = sorted({k for c in cfgs[1:] for k, v in to_dict(dataclasses.replace(c, seed=0)).items() if base[k] != v})
    if differ:
        return False, f"the runs differ in more than the seed ({', '.join(differ)})"
    cfg = cfgs[0]
    try:
        ds = load_dataset(cfg.dataset, cfg.data_root)
        reason = stack_support(create_model(cfg.model, ds.input_shape, ds.num_classes))
    except ConfigError as err:
        return False, str(err)
    if reason:
        return False, f"model {cfg.model} is not batched: {reason}"
    return True, f"{len(cfgs)} seeds of {cfg.model} on {cfg.dataset} trained as one stacked model"


def run_seeds(cfgs: list[ForgetConfig], hooks: Hooks | None = None,
              warm_steps: int = WARM_MAX_STEPS) -> tuple[list[tuple[Trajectory, dict[str, float]]], str]:
    """Every config's run, stacked where :func:`batchable` allows, else one after another; with the reason."""
    ok, reason = batchable(cfgs)
    if ok:
        return run_forgetting_batched(cfgs, hooks, warm_steps), f"batched: {reason}"
    return [run_forgetting(c, hooks, warm_steps) for c in cfgs], f"one run at a time: {reason}"


@dataclasses.dataclass
class _Batch:
    cfg: ForgetConfig  # the shared config (seed of member 0)
    members: Members
    template: torch.nn.Module  # scratch module for evaluating one member with train.evaluate*
    pools: list[torch.Tensor]
    sizes: list[int]
    device: torch.device
    x_test: torch.Tensor
    y_test: torch.Tensor

    def subsets(self, n: int) -> list[torch.Tensor]:
        return [pool[:n] for pool in self.pools]

    def member_model(self, params: list[torch.Tensor], j: int) -> torch.nn.Module:
        return self.members.net.load_member(self.template, params, j)

    @property
    def forget_lr(self) -> float:
        return self.cfg.forget_lr or self.cfg.optim.lr


def run_forgetting_batched(cfgs: list[ForgetConfig], hooks: Hooks | None = None, warm_steps: int = WARM_MAX_STEPS,
                           exact: bool = True) -> list[tuple[Trajectory, dict[str, float]]]:
    """``[run_forgetting(c) for c in cfgs]``, trained as one stacked model. Timings are each run's share of the
    batch's wall time per phase, with ``batched_members`` = K. ``exact=False`` runs the grouped backward kernels too:
    faster, but each member then drifts from its own run by float rounding amplified over the steps (stacked.py)."""
    ok, reason = batchable(cfgs)
    if not ok:
        raise ConfigError(f"these runs cannot be batched: {reason}")
    hooks = hooks or Hooks()
    flights = [preflight(c, warm_steps) for c in cfgs]
    cfg, ds, sizes = cfgs[0], flights[0][0], flights[0][2]
    device = pick_device(cfg.device)
    inits = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        inits.append(create_model(c.model, ds.input_shape, ds.num_classes).state_dict())
    template = create_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    net = StackedNet(template, exact)
    members = Members(net, net.stack(inits, device), ds.x_train.to(device), ds.y_train.to(device),
                      resolved_batch_size(cfg, ds), cfg.augment, hooks, [c.seed for c in cfgs])
    batch = _Batch(cfg, members, template, [f[1].pool.to(device) for f in flights], sizes, device,
                   ds.x_test.to(device), ds.y_test.to(device))
    k, timings = len(cfgs), {}

    t0 = time.perf_counter()
    opt = StackedOptimizer(members.params, cfg.optim)
    gens = [torch.Generator().manual_seed(c.seed) for c in cfgs]
    vals = [f[1].val.to(device) for f in flights]
    histories = _pretrain(batch, opt, gens, vals)
    timings["pretrain_s"] = time.perf_counter() - t0
    theta0_opt = opt.state_dict()

    t0 = time.perf_counter()
    trajs = _forget(batch, opt, gens, histories)
    timings["forgetting_s"] = time.perf_counter() - t0
    if cfg.warm != "off":
        theta0 = [t.states[0] for t in trajs]
        t0 = time.perf_counter()
        supersets = warm_sizes(flights[0][1].n0, cfg.r, len(flights[0][1].pool), warm_steps)
        warm = _film(batch, theta0, theta0_opt, supersets, WARM_SEED_OFFSET, "warm oracles") if supersets else None
        timings["warm_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        control = _film(batch, theta0, theta0_opt, [sizes[0]] * max(len(sizes) - 1, len(supersets)),
                        CONTROL_SEED_OFFSET, "control film")
        timings["control_s"] = time.perf_counter() - t0
        for j, traj in enumerate(trajs):
            traj.warm, traj.control = (warm[j] if warm else None), control[j]
    share = {name: s / k for name, s in timings.items()}
    return [(traj, {**share, "batched_members": float(k)}) for traj in trajs]


def _pretrain(b: _Batch, opt: StackedOptimizer, gens: list[torch.Generator],
              vals: list[torch.Tensor]) -> list[list[dict[str, float]]]:
    """``forgetting.pretrain`` for every member; a member that stops early sits out while the others go on."""
    m, pc = b.members, b.cfg.pretrain
    histories: list[list[dict[str, float]]] = [[] for _ in range(m.k)]
    best, best_state = [(-1.0, 0.0)] * m.k, [None] * m.k
    stale, best_loss = [0] * m.k, [float("inf")] * m.k
    active = m.all_active()
    total, step = pc.max_epochs * steps_per_epoch(b.sizes[0], m.batch), 0
    for epoch in range(1, pc.max_epochs + 1):
        losses, step = train_epoch(m, opt, b.subsets(b.sizes[0]), gens, active, "pre-training", step, total)
        accs = []
        for j in active.nonzero().flatten().tolist():
            val_loss, val_acc = evaluate(b.member_model(m.params, j), m.x[vals[j]], m.y[vals[j]])
            histories[j].append({"epoch": epoch, "train_loss": losses[j], "val_loss": val_loss, "val_acc": val_acc})
            accs.append(val_acc)
            if pc.until == "plateau":
                stale[j] = 0 if losses[j] < best_loss[j] * (1 - PLATEAU_TOL) else stale[j] + 1
                best_loss[j] = min(best_loss[j], losses[j])
            else:
                stale[j] = 0 if val_acc > best[j][0] else stale[j] + 1
                if (val_acc, -val_loss) > best[j]:
                    best[j], best_state[j] = (val_acc, -val_loss), [p[j].detach().clone() for p in m.params]
            if pc.early_stop and stale[j] >= pc.patience:
                active[j] = False
        m.hooks.report("pre-training", step, total, epoch=epoch, val_acc=sum(accs) / len(accs),
                       members=float(len(accs)))
        if not bool(active.any()):
            break
    if pc.early_stop and pc.until == "val_acc":
        with torch.no_grad():
            for j, saved in enumerate(best_state):
                for p, value in zip(m.params, saved or []):
                    p[j] = value
    return histories


def _forget(b: _Batch, opt: StackedOptimizer, gens: list[torch.Generator],
            histories: list[list[dict[str, float]]]) -> list[Trajectory]:
    """The forgetting stages for every member, measured as ``forgetting.run_forgetting`` measures them."""
    m, cfg, sizes, x_test, y_test = b.members, b.cfg, b.sizes, b.x_test, b.y_test
    states = [[m.net.member(m.params, j)] for j in range(m.k)]
    losses: list[list[torch.Tensor]] = [[] for _ in range(m.k)]
    correct: list[list[torch.Tensor]] = [[] for _ in range(m.k)]
    removed_acc: list[list[float | None]] = [[None] for _ in range(m.k)]
    removed_theta0: list[float | None] = []
    for j in range(m.k):
        model = b.member_model(m.params, j)
        loss, ok = evaluate_samples(model, x_test, y_test)
        losses[j].append(loss)
        correct[j].append(ok)
        removed = b.pools[j][sizes[-1]:sizes[0]]
        removed_theta0.append(evaluate(model, m.x[removed], m.y[removed])[1] if len(sizes) > 1 else None)
    train_loss = [[h[-1]["train_loss"]] for h in histories]
    stage_steps, cap_hit = [[0] for _ in range(m.k)], [[False] for _ in range(m.k)]
    budget = cfg.stage_budget
    if cfg.carry_optimizer:
        opt.lr = b.forget_lr
    total = sum(budget.planned_steps(n, m.batch) for n in sizes[1:])
    step = 0
    for s, size in enumerate(sizes[1:], start=1):
        if not cfg.carry_optimizer:
            opt = StackedOptimizer(m.params, cfg.optim, b.forget_lr)
        results, step = train_stage(m, opt, b.subsets(size), budget, gens, "forgetting", step, total)
        for j, result in enumerate(results):
            model = b.member_model(m.params, j)
            loss, ok = evaluate_samples(model, x_test, y_test)
            losses[j].append(loss)
            correct[j].append(ok)
            removed = b.pools[j][size:sizes[0]]
            removed_acc[j].append(evaluate(model, m.x[removed], m.y[removed])[1])
            states[j].append(m.net.member(m.params, j))
            train_loss[j].append(result.train_loss)
            stage_steps[j].append(result.steps)
            cap_hit[j].append(result.cap_hit)
        m.hooks.report("forgetting", step, total, stage=s,
                       source_loss=sum(float(l[-1].mean()) for l in losses) / m.k)
    groups = param_groups(b.template)
    trajs = []
    for j in range(m.k):
        report = measure_film(losses[j], correct[j], removed_acc[j], removed_theta0[j],
                              [predicted_flat(st, groups) for st in states[j]])
        trajs.append(Trajectory(states[j], groups, sizes, train_loss[j], report.source_acc, report.source_loss,
                                histories[j], report, stage_steps=stage_steps[j], cap_hit=cap_hit[j]))
    return trajs


def _film(b: _Batch, theta0: list[dict[str, torch.Tensor]], theta0_opt: dict, sizes: list[int], offset: int,
          phase: str) -> list[Continuation]:
    """``continuation._film`` for every member: from Θ0 over ``sizes`` with the stage budget, its own generator."""
    cfg, m0 = b.cfg, b.members
    m = dataclasses.replace(m0, params=m0.net.stack(theta0, b.device))
    opt = StackedOptimizer(m.params, cfg.optim, b.forget_lr)
    if cfg.carry_optimizer:
        opt.load_state_dict(theta0_opt)
    gens = [torch.Generator().manual_seed(seed + offset) for seed in m.seeds]
    budget = cfg.stage_budget
    total = sum(budget.planned_steps(n, m.batch) for n in sizes)
    out = [Continuation([], [], [], []) for _ in range(m.k)]
    step = 0
    for size in sizes:
        if not cfg.carry_optimizer:
            opt = StackedOptimizer(m.params, cfg.optim, b.forget_lr)
        _, step = train_stage(m, opt, b.subsets(size), budget, gens, phase, step, total)
        for j, film in enumerate(out):
            loss, acc = evaluate(b.member_model(m.params, j), b.x_test, b.y_test)
            film.states.append(m.net.member(m.params, j))
            film.sizes.append(size)
            film.source_acc.append(acc)
            film.source_loss.append(loss)
    return out
