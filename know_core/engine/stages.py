"""One stage of training under a *stage budget* (:mod:`.budget`: the grammar, parsed once into the config's
``stage_budget``): how much a forgetting stage, a control stage or a warm-oracle stage trains on its subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from know_core.engine.budget import CONVERGE_CAP, StageBudget, parse_budget  # noqa: F401  (importable from here, as before)
from know_core.engine.train import Hooks, train_epoch, train_steps

CONVERGE_TOL = 0.01  # relative improvement of the epoch's training loss that still counts as falling
CONVERGE_PATIENCE = 2


@dataclass
class StageResult:
    train_loss: float  # mean training loss over the stage's last epoch (or its last steps)
    steps: int  # optimiser steps taken
    cap_hit: bool = False  # converge only: stopped by the cap, not by a plateau


def train_stage(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                budget: StageBudget, batch_size: int, generator: torch.Generator, hooks: Hooks, phase: str,
                step: int = 0, total: int = 0, augment: str = "none") -> tuple[StageResult, int]:
    """Train one stage on resident tensors under ``budget``. Returns the stage's result and the running step count."""
    start = step
    if budget.kind == "steps":
        loss, step = train_steps(model, optimizer, x, y, budget.amount, batch_size, generator, hooks, phase, step,
                                 total, augment)
        return StageResult(loss, step - start), step
    if budget.kind == "epochs":
        for _ in range(budget.amount):
            loss, step = train_epoch(model, optimizer, x, y, batch_size, generator, hooks, phase, step, total, augment)
        return StageResult(loss, step - start), step
    best, stale = float("inf"), 0
    for _ in range(budget.amount):
        loss, step = train_epoch(model, optimizer, x, y, batch_size, generator, hooks, phase, step, total, augment)
        stale = 0 if loss < best * (1 - CONVERGE_TOL) else stale + 1
        best = min(best, loss)
        if stale >= CONVERGE_PATIENCE:
            return StageResult(loss, step - start), step
    return StageResult(loss, step - start, cap_hit=True), step
