"""The one training loop, over K members (K = 1 for a plain model), with progress and cancellation hooks, plus
evaluation.

Data stays on the device as tensors and each batch is one ``index_select``; no DataLoader, no PIL. The loop knows
nothing about tqdm or Streamlit: callers pass :class:`Hooks` (a progress callback and a stop predicate), the way
minGPT's trainer exposes callbacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from know_core.common.errors import ConfigError, TrainingDiverged
from know_core.common.hooks import Hooks, ProgressEvent  # noqa: F401  (the loop reports through them)
from know_core.engine.budget import steps_per_epoch  # noqa: F401  (re-exported: the loop counts its steps)
from know_core.engine.config import OptimConfig
from know_core.engine.stacked import StackedNet, stack_members, step_members

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) -> a scalar to minimise
DIVERGED_LOSS = 1e6  # a cross-entropy this large means logits of ~1e6: training has diverged


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine; use 'cpu' or 'auto'")
    return torch.device(name)


def make_optimizer(models: nn.Module | list[nn.Module], cfg: OptimConfig,
                   lr: float | None = None) -> torch.optim.Optimizer:
    """``cfg``'s torch optimiser over the parameters of ``models``: one module, or K members, whose parameters it
    stacks (:func:`stacked.stack_members`; elementwise updates make it K independent optimisers, stepped by
    :func:`stacked.step_members`)."""
    lr = cfg.lr if lr is None else lr
    models = models if isinstance(models, list) else [models]
    params = stack_members(models) if len(models) > 1 else list(models[0].parameters())
    # K > 1: torch's multi-tensor form, op for op the single-tensor one (what a plain model gets on the CPU) with the
    # scalars computed alike
    many = {"foreach": True} if len(models) > 1 else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, **many)
    if cfg.optimizer == "adamw":  # decoupled weight decay: shrinks weights without going through Adam's scaling
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **many)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **many)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """On-device augmentation of an image batch (B, C, H, W): random shifts of up to H/14 pixels (zero fill) and/or
    horizontal flips, each sample its own draw from ``generator``. ``none`` returns the batch untouched."""
    if kind == "none":
        return x
    b, _, h, w = x.shape
    if "flip" in kind:
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "shift" in kind:
        pad = max(1, h // 14)
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
        oy, ox = (torch.randint(0, 2 * pad + 1, (2, b), generator=generator)).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]
        x = padded[torch.arange(b, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    # Plain NCHW strides out, as in: the gather leaves channels-last strides, and convolutions pick their kernels (so
    # their summation order) by layout, so augmented runs would run other kernels than plain ones, and the
    # seed-batched path (stacked.py), which runs each member's gradients in NCHW, would drift from them (off by 1e-4
    # after a few dozen Adam steps, on some CPUs past the tests' tolerance).
    return x.clone(memory_format=torch.contiguous_format)


@dataclass
class Members:
    """K networks trained as one by the loop below (K = 1: a plain model, any architecture), on resident data.

    Each member has its own subset, generator (shuffles, augmentation draws) and stopping rule. K > 1 keeps the
    members' weights stacked (each module holds views of its slice) and runs the forward pass of all members at once
    through ``net`` (``stacked.py``), bit for bit each member's own; one ``torch.optim`` optimiser over the stacked
    tensors is K independent optimisers. A stopped member (``active`` False) draws nothing from its generator and
    keeps its weights and optimiser state (``step_members``): its run is the one it would have had alone."""

    models: list[nn.Module]
    x: torch.Tensor
    y: torch.Tensor
    batch: int
    augment: str = "none"
    hooks: Hooks = field(default_factory=Hooks)
    net: StackedNet | None = None  # K > 1: the grouped forward pass over the members' stacked weights
    seeds: list[int] = field(default_factory=list)  # for messages only
    loss: Loss = nn.functional.cross_entropy  # the training loss

    def __post_init__(self):
        if len(self.models) > 1 and self.net is None:
            raise ValueError(f"{len(self.models)} members need a StackedNet to run their forward pass together")
        self.params = stack_members(self.models) if len(self.models) > 1 else []

    @property
    def k(self) -> int:
        return len(self.models)

    def all_active(self) -> torch.Tensor:
        return torch.ones(self.k, dtype=torch.bool)

    def everything(self) -> list[torch.Tensor]:
        """The whole resident set as every member's subset."""
        return [torch.arange(len(self.y), device=self.y.device)] * self.k

    def logits(self, xb: torch.Tensor) -> list[torch.Tensor] | tuple[torch.Tensor, ...]:
        """Each member's logits (B, classes) for inputs ``xb`` (K, B, ...), member k seeing ``xb[k]``."""
        if self.net is None:
            return [self.models[0](xb[0])]
        return self.net(self.params, xb).unbind(0)


def _step(m: Members, optimizer: torch.optim.Optimizer, idx: torch.Tensor, gens: list[torch.Generator],
          active: torch.Tensor) -> torch.Tensor:
    """One optimiser step; ``idx`` (K, B) indexes the resident data. Returns each member's batch loss (K,)."""
    k, b = idx.shape
    live = active.tolist()
    flat = idx.flatten().to(m.x.device)
    xb, yb = m.x.index_select(0, flat).view(k, b, *m.x.shape[1:]), m.y.index_select(0, flat).view(k, b)
    if m.augment != "none":
        xb = torch.stack([augment_batch(xb[j], m.augment, gens[j]) if live[j] else xb[j] for j in range(k)])
    # one cross-entropy per member: the batched reduction would sum in another order than the member's own run
    losses = [m.loss(logits, yb[j]) for j, logits in enumerate(m.logits(xb))]
    optimizer.zero_grad(set_to_none=True)
    torch.stack([loss for loss, on in zip(losses, live) if on]).sum().backward()  # each member's gradient its own
    if m.k > 1:
        step_members(optimizer, live)
    else:
        optimizer.step()
    return torch.stack(losses).detach()


def _orders(subsets: list[torch.Tensor], gens: list[torch.Generator], active: torch.Tensor) -> list[torch.Tensor]:
    """Each active member's subset in a fresh shuffled order (its generator's draw); a stopped member draws nothing."""
    return [sub[torch.randperm(len(sub), generator=g).to(sub.device)] if active[j] else sub
            for j, (sub, g) in enumerate(zip(subsets, gens))]


def _tick(m: Members, phase: str, step: int, total: int) -> int:
    step += 1
    if m.hooks.progress is not None:
        m.hooks.report(phase, step, total)
    return step


def train_epoch(m: Members, optimizer: torch.optim.Optimizer, subsets: list[torch.Tensor],
                gens: list[torch.Generator], active: torch.Tensor | None = None, phase: str = "train", step: int = 0,
                total: int = 0) -> tuple[list[float], int]:
    """One shuffled pass per active member over its subset (index tensors into ``m.x``, all of one size). Returns
    (mean loss per member, steps done so far)."""
    active = m.all_active() if active is None else active
    for model in m.models:
        model.train()
    n = len(subsets[0])
    orders = _orders(subsets, gens, active)
    loss_sum = torch.zeros(m.k, device=m.x.device)
    for start in range(0, n, m.batch):
        m.hooks.check()
        idx = torch.stack([o[start:start + m.batch] for o in orders])
        loss_sum += _step(m, optimizer, idx, gens, active) * idx.shape[1]
        step = _tick(m, phase, step, total)
    losses = [float(v) / n for v in loss_sum.cpu()]
    check_diverged(m, losses, active, phase)
    return losses, step


def train_steps(m: Members, optimizer: torch.optim.Optimizer, subsets: list[torch.Tensor],
                gens: list[torch.Generator], steps: int, phase: str = "train", step: int = 0,
                total: int = 0) -> tuple[list[float], int]:
    """Exactly ``steps`` optimiser steps per member over reshuffled passes (the last pass may stop midway). Returns
    (mean loss per member over the last pass's worth of steps, steps done so far)."""
    active = m.all_active()
    for model in m.models:
        model.train()
    per_epoch = steps_per_epoch(len(subsets[0]), m.batch)
    recent: list[torch.Tensor] = []
    orders = _orders(subsets, gens, active)
    for i in range(steps):
        m.hooks.check()
        pos = (i % per_epoch) * m.batch
        if i and pos == 0:
            orders = _orders(subsets, gens, active)
        idx = torch.stack([o[pos:pos + m.batch] for o in orders])
        recent = (recent + [_step(m, optimizer, idx, gens, active)])[-per_epoch:]
        step = _tick(m, phase, step, total)
    stacked = torch.stack(recent)
    losses = [float(stacked[:, j].contiguous().mean()) for j in range(m.k)]  # each member's own run's reduction
    check_diverged(m, losses, active, phase)
    return losses, step


def check_diverged(m: Members, losses: list[float], active: torch.Tensor, phase: str) -> None:
    """Stop a run whose loss or weights went non-finite or exploded, with the reason (and the seed, when batched)."""
    for j in active.nonzero().flatten().tolist():
        finite = bool(torch.stack([torch.isfinite(p).all() for p in m.models[j].parameters()]).all())
        if not math.isfinite(losses[j]) or losses[j] > DIVERGED_LOSS or not finite:
            what = "loss became" if finite else "weights became"
            who, run = (f" (seed {m.seeds[j]})", "batched run") if m.k > 1 else ("", "run")
            raise TrainingDiverged(f"{phase}{who}: the {what} NaN or infinite or exploded (mean loss {losses[j]:.3g}; "
                                   f"is the learning rate far too high?); the {run} was stopped")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2048) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over ``x``, ``y`` in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start:start + batch_size])
        yb = y[start:start + batch_size]
        loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return loss_sum / len(y), correct / len(y)


@torch.no_grad()
def evaluate_samples(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy and correctness (CPU tensors) over ``x``, ``y`` in eval mode: the raw material of
    paired tests between two models on the same test set."""
    model.eval()
    losses, correct = [], []
    for start in range(0, len(y), batch_size):
        logits = model(x[start:start + batch_size])
        yb = y[start:start + batch_size]
        losses.append(nn.functional.cross_entropy(logits, yb, reduction="none").double().cpu())
        correct.append((logits.argmax(1) == yb).cpu())
    return torch.cat(losses), torch.cat(correct)
