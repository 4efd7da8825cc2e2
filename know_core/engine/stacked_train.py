"""The training loops of ``train.py`` and ``stages.py`` for K stacked members (``stacked.py``) at once.

Every member keeps what its own run would have: its generator (subset shuffles, augmentation draws), its subset, its
losses, its stopping rule. A member that has stopped (``active`` False) draws nothing from its generator and its
weights and optimiser state stay put, so its run is the one it would have had alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from know_core.common.errors import TrainingDiverged
from know_core.engine.stacked import StackedNet, StackedOptimizer
from know_core.engine.stages import CONVERGE_PATIENCE, CONVERGE_TOL, StageBudget, StageResult
from know_core.engine.train import DIVERGED_LOSS, augment_batch, steps_per_epoch
from know_core.common.hooks import Hooks


@dataclass
class Members:
    """K members trained together: the stacked net and weights, resident data, and each member's generator."""

    net: StackedNet
    params: list[torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    batch: int
    augment: str
    hooks: Hooks
    seeds: list[int]  # for messages only

    @property
    def k(self) -> int:
        return self.params[0].shape[0]

    def all_active(self) -> torch.Tensor:
        return torch.ones(self.k, dtype=torch.bool)


def _step(m: Members, opt: StackedOptimizer, idx: torch.Tensor, gens: list[torch.Generator],
          active: torch.Tensor) -> torch.Tensor:
    """One optimiser step; ``idx`` (K, B) indexes the resident data. Returns each member's batch loss (K,)."""
    k, b = idx.shape
    flat = idx.flatten().to(m.x.device)
    xb, yb = m.x.index_select(0, flat).view(k, b, *m.x.shape[1:]), m.y.index_select(0, flat).view(k, b)
    if m.augment != "none":
        xb = torch.stack([augment_batch(xb[j], m.augment, gens[j]) if active[j] else xb[j] for j in range(k)])
    logits = m.net(m.params, xb)
    # one cross-entropy per member: the batched reduction would sum in another order than the member's own run
    losses = torch.stack([nn.functional.cross_entropy(logits[j], yb[j]) for j in range(k)])
    weight = active.to(losses.device, losses.dtype)
    grads = torch.autograd.grad((losses * weight).sum(), m.params)
    opt.step(list(grads), None if bool(active.all()) else active)
    return losses.detach()


def _orders(subsets: list[torch.Tensor], gens: list[torch.Generator], active: torch.Tensor) -> list[torch.Tensor]:
    """Each active member's subset in a fresh shuffled order (its generator's draw); a stopped member draws nothing."""
    return [sub[torch.randperm(len(sub), generator=g).to(sub.device)] if active[j] else sub
            for j, (sub, g) in enumerate(zip(subsets, gens))]


def _report(m: Members, phase: str, step: int, total: int) -> int:
    step += 1
    if m.hooks.progress is not None:
        m.hooks.report(phase, step, total)
    return step


def check_members(m: Members, losses: list[float], active: torch.Tensor, phase: str) -> None:
    """The stacked twin of ``train.check_diverged``: stop when an active member's loss or weights blew up."""
    finite = torch.stack([torch.isfinite(p.detach()).flatten(1).all(1) for p in m.params]).all(0).cpu()
    for j in active.nonzero().flatten().tolist():
        if not math.isfinite(losses[j]) or losses[j] > DIVERGED_LOSS or not bool(finite[j]):
            raise TrainingDiverged(f"{phase} (seed {m.seeds[j]}): the loss or weights became NaN or infinite or "
                                   f"exploded (mean loss {losses[j]:.3g}; is the learning rate far too high?); "
                                   "the batched run was stopped")


def train_epoch(m: Members, opt: StackedOptimizer, subsets: list[torch.Tensor], gens: list[torch.Generator],
                active: torch.Tensor, phase: str, step: int = 0, total: int = 0) -> tuple[list[float], int]:
    """One shuffled pass per member over its subset (all of one size). Returns (mean loss per member, step)."""
    n = len(subsets[0])
    orders = _orders(subsets, gens, active)
    loss_sum = torch.zeros(m.k, device=m.x.device)
    for start in range(0, n, m.batch):
        m.hooks.check()
        idx = torch.stack([o[start:start + m.batch] for o in orders])
        loss_sum += _step(m, opt, idx, gens, active) * idx.shape[1]
        step = _report(m, phase, step, total)
    losses = [float(v) / n for v in loss_sum.cpu()]
    check_members(m, losses, active, phase)
    return losses, step


def train_steps(m: Members, opt: StackedOptimizer, subsets: list[torch.Tensor], gens: list[torch.Generator],
                steps: int, phase: str, step: int = 0, total: int = 0) -> tuple[list[float], int]:
    """Exactly ``steps`` steps per member over reshuffled passes (``train.train_steps``, every member active)."""
    active = m.all_active()
    n = len(subsets[0])
    per_epoch = steps_per_epoch(n, m.batch)
    recent: list[torch.Tensor] = []
    orders = _orders(subsets, gens, active)
    for i in range(steps):
        m.hooks.check()
        pos = (i % per_epoch) * m.batch
        if i and pos == 0:
            orders = _orders(subsets, gens, active)
        idx = torch.stack([o[pos:pos + m.batch] for o in orders])
        recent = (recent + [_step(m, opt, idx, gens, active)])[-per_epoch:]
        step = _report(m, phase, step, total)
    stacked = torch.stack(recent).cpu()
    losses = [float(stacked[:, j].mean()) for j in range(m.k)]
    check_members(m, losses, active, phase)
    return losses, step


def train_stage(m: Members, opt: StackedOptimizer, subsets: list[torch.Tensor], budget: StageBudget,
                gens: list[torch.Generator], phase: str, step: int = 0,
                total: int = 0) -> tuple[list[StageResult], int]:
    """``stages.train_stage`` for every member: a converge budget stops each member on its own plateau."""
    start = step
    if budget.kind == "steps":
        losses, step = train_steps(m, opt, subsets, gens, budget.amount, phase, step, total)
        return [StageResult(loss, step - start) for loss in losses], step
    active = m.all_active()
    if budget.kind == "epochs":
        for _ in range(budget.amount):
            losses, step = train_epoch(m, opt, subsets, gens, active, phase, step, total)
        return [StageResult(loss, step - start) for loss in losses], step
    per_epoch = steps_per_epoch(len(subsets[0]), m.batch)
    results: list[StageResult | None] = [None] * m.k
    best, stale, epochs = [float("inf")] * m.k, [0] * m.k, [0] * m.k
    for _ in range(budget.amount):
        losses, step = train_epoch(m, opt, subsets, gens, active, phase, step, total)
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
