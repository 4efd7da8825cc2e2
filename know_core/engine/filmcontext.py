"""What the films of one run share: the split of its source data, the context every film trains with (data on the
device, sizes, budget, recipe, the stacked forward pass for K > 1 members), and the film recorded beside the
forgetting film (:class:`Continuation`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from know_core.common.hooks import Hooks
from know_core.data import Dataset
from know_core.engine.budget import StageBudget
from know_core.engine.config import ForgetConfig
from know_core.engine.stacked import StackedNet
from know_core.engine.train import Loss, Members
from know_core.models import create_model


@dataclass
class Continuation:
    """A film recorded beside the forgetting film: the warm oracles Θ_{−1}, Θ_{−2} … or the control film C_1, C_2 …"""

    states: list[dict[str, torch.Tensor]]
    sizes: list[int]
    source_acc: list[float]
    source_loss: list[float]


@dataclass
class SourceSplit:
    """Index sets into the source training set: validation (to judge convergence) and the nested-subset order."""

    val: torch.Tensor
    pool: torch.Tensor  # nested order over the rest; D0 is pool[:n0], D_s is pool[:⌊n0·r^s⌋], D_{−k} pool[:n0/r^k]
    n0: int


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's parameters and buffers, safe to keep while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class FilmContext:
    """What every film of one run trains with (or of K seed-batched runs, one ``cfgs`` and ``splits`` entry per
    member): resident data, the splits, the budget, the recipe, and the stacked forward pass when K > 1."""

    cfgs: list[ForgetConfig]  # one per member; they differ in the seed only
    ds: Dataset
    splits: list[SourceSplit]
    sizes: list[int]
    device: torch.device
    batch: int
    budget: StageBudget
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    hooks: Hooks
    net: StackedNet | None = None
    factory: Callable[[], nn.Module] | None = None  # a user's model (a fresh copy per call), else cfg.model by name
    loss: Loss = nn.functional.cross_entropy  # the training loss

    @property
    def cfg(self) -> ForgetConfig:
        return self.cfgs[0]

    @property
    def forget_lr(self) -> float:
        return self.cfg.forget_lr or self.cfg.optim.lr

    def subsets(self, n: int) -> list[torch.Tensor]:
        """Each member's D of size ``n``: indices into the resident training set."""
        return [split.pool[:n].to(self.device) for split in self.splits]

    def new_model(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        model = (self.factory() if self.factory is not None
                 else create_model(self.cfg.model, self.ds.input_shape, self.ds.num_classes)).to(self.device)
        if state is not None:
            model.load_state_dict(state)
        return model

    def members(self, models: list[nn.Module]) -> Members:
        return Members(models, self.x, self.y, self.batch, self.cfg.augment, self.hooks, self.net,
                       [c.seed for c in self.cfgs], self.loss)
