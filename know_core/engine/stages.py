"""One stage of training under a *stage budget*: how much a forgetting stage, a control stage or a warm-oracle stage
trains on its subset.

The grammar (``ForgetConfig.stage_budget``):

- ``epochs:N`` — N passes over the stage's subset (the release: ``epochs:1``). Steps per stage then shrink with the
  subset, so a film recorded this way mostly records the step schedule, not the loss of data (docs/forgetting.md).
- ``steps:N`` — exactly N optimiser steps on every stage, so the small subsets are really fitted.
- ``converge`` or ``converge:N`` — epochs until the stage's training loss stops falling (less than 1 % better for
  two epochs in a row), at most N epochs (default 50); hitting the cap is reported, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from know_core.engine.config import BUDGET_HELP
from know_core.common.errors import ConfigError
from know_core.engine.train import steps_per_epoch, train_epoch, train_steps
from know_core.common.hooks import Hooks

CONVERGE_CAP = 50  # epochs, when ``converge`` names no cap
CONVERGE_TOL = 0.01  # relative improvement of the epoch's training loss that still counts as falling
CONVERGE_PATIENCE = 2


@dataclass(frozen=True)
class StageBudget:
    kind: str  # epochs / steps / converge
    amount: int  # epochs, steps, or the converge cap in epochs

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount}"

    def planned_steps(self, n: int, batch: int) -> int:
        """Optimiser steps this budget plans for a subset of ``n`` samples (the cap, for converge)."""
        return self.amount if self.kind == "steps" else self.amount * steps_per_epoch(n, batch)


def parse_budget(text: str) -> StageBudget:
    """``epochs:3`` → StageBudget("epochs", 3); anything malformed is a ConfigError naming the field."""
    if not isinstance(text, str):
        raise ConfigError(f"stage_budget must be text like 'steps:200', got {text!r}; allowed: {BUDGET_HELP}")
    kind, _, amount = text.strip().partition(":")
    if kind == "converge" and not amount:
        return StageBudget("converge", CONVERGE_CAP)
    if kind not in ("epochs", "steps", "converge"):
        raise ConfigError(f"stage_budget {text!r}: unknown kind {kind!r}; allowed: {BUDGET_HELP}")
    try:
        value = int(amount)
    except ValueError:
        raise ConfigError(f"stage_budget {text!r}: {amount!r} is not a whole number; allowed: {BUDGET_HELP}") from None
    if value < 1 or value > 10_000_000:
        raise ConfigError(f"stage_budget {text!r}: the number must be between 1 and 10,000,000; allowed: {BUDGET_HELP}")
    return StageBudget(kind, value)


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
