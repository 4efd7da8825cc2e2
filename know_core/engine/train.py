"""Tensor-resident training loop with progress and cancellation hooks, plus evaluation.

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

from know_core.common.hooks import Hooks, ProgressEvent  # noqa: F401  (the loop reports through them)
from know_core.engine.config import OptimConfig
from know_core.common.errors import Cancelled, ConfigError, TrainingDiverged

DIVERGED_LOSS = 1e6  # a cross-entropy this large means logits of ~1e6: training has diverged


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine; use 'cpu' or 'auto'")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: OptimConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":  # decoupled weight decay: shrinks weights without going through Adam's scaling
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


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


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    loss = nn.functional.cross_entropy(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                batch_size: int, generator: torch.Generator, hooks: Hooks | None = None, phase: str = "train",
                step: int = 0, total_steps: int = 0, augment: str = "none") -> tuple[float, int]:
    """One shuffled pass over resident tensors ``x``, ``y``. Returns (mean loss, steps done so far)."""
    hooks = hooks or Hooks()
    model.train()
    n = len(y)
    order = torch.randperm(n, generator=generator).to(x.device)
    loss_sum = torch.zeros((), device=x.device)
    for start in range(0, n, batch_size):
        hooks.check()
        idx = order[start:start + batch_size]
        xb, yb = augment_batch(x.index_select(0, idx), augment, generator), y.index_select(0, idx)
        loss_sum += _step(model, optimizer, xb, yb) * len(idx)
        step += 1
        if hooks.progress is not None:
            hooks.report(phase, step, total_steps)
    mean_loss = float(loss_sum) / n
    check_diverged(model, mean_loss, phase)
    return mean_loss, step


def check_diverged(model: nn.Module, mean_loss: float, phase: str) -> None:
    """Stop a run whose loss or weights went non-finite or exploded, with the reason."""
    finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
    if not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS or not bool(finite):
        what = "weights became" if bool(finite) is False else "loss became"
        raise TrainingDiverged(f"{phase}: the {what} NaN or infinite or exploded (mean loss {mean_loss:.3g}; is the "
                               "learning rate far too high?); the run was stopped")


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int,
                batch_size: int, generator: torch.Generator, hooks: Hooks | None = None, phase: str = "train",
                step: int = 0, total_steps: int = 0, augment: str = "none") -> tuple[float, int]:
    """Exactly ``steps`` optimiser steps over reshuffled passes of ``x``, ``y`` (the last pass may stop midway).
    Returns (mean loss over the last pass's worth of steps, steps done so far)."""
    hooks = hooks or Hooks()
    model.train()
    n, per_epoch = len(y), steps_per_epoch(len(y), batch_size)
    recent: list[torch.Tensor] = []
    order = torch.randperm(n, generator=generator).to(x.device)
    for i in range(steps):
        hooks.check()
        pos = (i % per_epoch) * batch_size
        if i and pos == 0:
            order = torch.randperm(n, generator=generator).to(x.device)
        idx = order[pos:pos + batch_size]
        xb, yb = augment_batch(x.index_select(0, idx), augment, generator), y.index_select(0, idx)
        recent = (recent + [_step(model, optimizer, xb, yb)])[-per_epoch:]
        step += 1
        if hooks.progress is not None:
            hooks.report(phase, step, total_steps)
    mean_loss = float(torch.stack(recent).mean())
    check_diverged(model, mean_loss, phase)
    return mean_loss, step


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


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
