"""Downstream fine-tuning: a source-trained network (Θ0, a prediction, an oracle) gets a new head and learns a target.

Two recipes, the same budget for every initialisation so that only the starting weights differ:
- ``simple``: all layers, fixed number of epochs, constant learning rate;
- ``release``: the official script's shape — new head, a first phase that trains only normalisation layers and the
  head, then all layers with cosine decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from know_core.common.errors import ConfigError
from know_core.common.fields import knob
from know_core.data import Dataset
from know_core.engine.budget import steps_per_epoch
from know_core.engine.config import check_int_at_least, check_positive
from know_core.engine.train import Hooks, Members, evaluate, train_epoch
from know_core.models import param_groups

RECIPES = ("simple", "release")


@dataclass
class FinetuneConfig:
    recipe: str = "simple"
    epochs: int = knob(30, help="all-layer epochs", low=1)
    head_epochs: int = knob(5, help="release recipe only: the norm + head phase before unfreezing", low=0)
    lr: float = knob(1e-3, help="fine-tuning learning rate", low=0, open="low")
    batch_size: int = knob(32, help="fine-tuning batch size", low=1)

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(f"finetune.recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        check_int_at_least("finetune.epochs", self.epochs, 1)
        check_int_at_least("finetune.head_epochs", self.head_epochs, 0)
        check_positive("finetune.lr", self.lr)
        check_int_at_least("finetune.batch_size", self.batch_size, 1)


def head_name(model: nn.Module) -> str:
    """The module path of the classifier head: the last ``nn.Linear`` in the network."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ConfigError(f"{type(model).__name__} has no linear classifier head to replace")
    return names[-1]


def replace_head(model: nn.Module, num_classes: int, seed: int) -> str:
    """Swap the classifier head for a freshly initialised one with ``num_classes`` outputs; returns its path."""
    name = head_name(model)
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old: nn.Linear = getattr(parent, leaf)
    torch.manual_seed(seed)
    setattr(parent, leaf, nn.Linear(old.in_features, num_classes).to(old.weight.device))
    return name


def finetune(model: nn.Module, target: Dataset, x: torch.Tensor, y: torch.Tensor, cfg: FinetuneConfig, seed: int,
             hooks: Hooks | None = None, phase: str = "fine-tuning") -> float:
    """Fine-tune ``model`` (its head already replaced) on ``x``, ``y``; returns target test accuracy."""
    device = x.device
    m = Members([model], x, y, cfg.batch_size, hooks=hooks or Hooks())
    gens = [torch.Generator().manual_seed(seed)]
    head = head_name(model)
    groups = param_groups(model)
    per_epoch = steps_per_epoch(len(y), cfg.batch_size)
    head_epochs = cfg.head_epochs if cfg.recipe == "release" else 0
    total, step = (head_epochs + cfg.epochs) * per_epoch, 0
    if head_epochs:
        warm = [p for n, p in model.named_parameters() if n.startswith(head + ".") or groups.get(n) == "norm"]
        optimizer = torch.optim.Adam(warm, lr=cfg.lr)
        for _ in range(head_epochs):
            _, step = train_epoch(m, optimizer, m.everything(), gens, None, phase, step, total)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
                if cfg.recipe == "release" else None)
    for _ in range(cfg.epochs):
        _, step = train_epoch(m, optimizer, m.everything(), gens, None, phase, step, total)
        if schedule is not None:
            schedule.step()
    return evaluate(model, target.x_test.to(device), target.y_test.to(device))[1]
