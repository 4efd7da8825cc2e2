"""Pre-training (to early stopping or a plateau), and one stage of training under a *stage budget*: how much a
forgetting stage, a control stage or a warm-oracle stage trains on its subset. Both for K members at once (K = 1 for
a plain model; ``train.Members``).

The budget's grammar lives in :mod:`know_core.engine.budget` and is parsed once into the config's ``stage_budget``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from know_core.engine.budget import CONVERGE_CAP, StageBudget, parse_budget, steps_per_epoch  # noqa: F401  (importable from here)
from know_core.engine.config import ForgetConfig
from know_core.engine.train import Members, evaluate, train_epoch, train_steps

CONVERGE_TOL = 0.01  # relative improvement of the epoch's training loss that still counts as falling
CONVERGE_PATIENCE = 2
PLATEAU_TOL = 0.01  # pre-training to a plateau: the training loss must improve by 1 % to count


@dataclass
class StageResult:
    train_loss: float  # mean training loss over the stage's last epoch (or its last steps)
    steps: int  # optimiser steps taken
    cap_hit: bool = False  # converge only: stopped by the cap, not by a plateau


def train_stage(m: Members, optimizer: torch.optim.Optimizer, subsets: list[torch.Tensor], budget: StageBudget,
                gens: list[torch.Generator], phase: str, step: int = 0,
                total: int = 0) -> tuple[list[StageResult], int]:
    """Train one stage of every member (``train.Members``; K = 1 for a plain model) on its subset under ``budget``:
    a converge budget stops each member on its own plateau. Returns each member's result and the running step
    count."""
    start = step
    if budget.kind == "steps":
        losses, step = train_steps(m, optimizer, subsets, gens, budget.amount, phase, step, total)
        return [StageResult(loss, step - start) for loss in losses], step
    active = m.all_active()
    if budget.kind == "epochs":
        for _ in range(budget.amount):
            losses, step = train_epoch(m, optimizer, subsets, gens, active, phase, step, total)
        return [StageResult(loss, step - start) for loss in losses], step
    per_epoch = steps_per_epoch(len(subsets[0]), m.batch)
    results: list[StageResult | None] = [None] * m.k
    best, stale, epochs = [float("inf")] * m.k, [0] * m.k, [0] * m.k
    for _ in range(budget.amount):
        losses, step = train_epoch(m, optimizer, subsets, gens, active, phase, step, total)
        for j in active.nonzero().flatten().tolist():
            epochs[j] += 1
            stale[j] = 0 if losses[j] < best[j] * (1 - CONVERGE_TOL) else stale[j] + 1
            best[j] = min(best[j], losses[j])
            if stale[j] >= CONVERGE_PATIENCE:
                results[j], active[j] = StageResult(losses[j], epochs[j] * per_epoch), False
        if not bool(active.any()):
            break
    for j in active.nonzero().flatten().tolist():
        results[j] = StageResult(losses[j], epochs[j] * per_epoch, cap_hit=True)
    return results, step  # type: ignore[return-value]


def pretrain_members(m: Members, optimizer: torch.optim.Optimizer, subsets: list[torch.Tensor],
                     vals: list[tuple[torch.Tensor, torch.Tensor]], cfg: ForgetConfig, gens: list[torch.Generator],
                     phase: str = "pre-training") -> list[list[dict[str, float]]]:
    """Train every member until its validation accuracy stops improving (keeping its best-validation weights), until
    its training loss reaches a plateau (``pretrain.until="plateau"``), or exactly ``max_epochs``; a member that
    stops early sits out while the others go on. Returns each member's history."""
    pc = cfg.pretrain
    histories: list[list[dict[str, float]]] = [[] for _ in range(m.k)]
    best, best_state = [(-1.0, 0.0)] * m.k, [None] * m.k
    stale, best_loss = [0] * m.k, [float("inf")] * m.k
    active = m.all_active()
    total, step = pc.max_epochs * steps_per_epoch(len(subsets[0]), m.batch), 0
    for epoch in range(1, pc.max_epochs + 1):
        losses, step = train_epoch(m, optimizer, subsets, gens, active, phase, step, total)
        members = active.nonzero().flatten().tolist()
        for j in members:
            val_loss, val_acc = evaluate(m.models[j], *vals[j])
            histories[j].append({"epoch": epoch, "train_loss": losses[j], "val_loss": val_loss, "val_acc": val_acc})
            if pc.until == "plateau":
                stale[j] = 0 if losses[j] < best_loss[j] * (1 - PLATEAU_TOL) else stale[j] + 1
                best_loss[j] = min(best_loss[j], losses[j])
            else:
                # Patience counts epochs without an accuracy gain; among equally accurate epochs the lower loss is
                # kept (on small validation sets accuracy ties are common, and the loss can shrink forever on
                # separable data).
                stale[j] = 0 if val_acc > best[j][0] else stale[j] + 1
                if (val_acc, -val_loss) > best[j]:
                    # clones, not deepcopy: a batched member's weights are views, and deepcopy copies all K
                    best[j] = (val_acc, -val_loss)
                    best_state[j] = {n: t.clone() for n, t in m.models[j].state_dict().items()}
            if pc.early_stop and stale[j] >= pc.patience:
                active[j] = False
        mean = lambda key: sum(histories[j][-1][key] for j in members) / len(members)  # noqa: E731
        m.hooks.report(phase, step, total, epoch=epoch, train_loss=mean("train_loss"), val_acc=mean("val_acc"),
                       **({"members": float(len(members))} if m.k > 1 else {}))
        if not bool(active.any()):
            break
    if pc.early_stop and pc.until == "val_acc":
        for model, state in zip(m.models, best_state):
            if state is not None:
                model.load_state_dict(state)
    return histories
