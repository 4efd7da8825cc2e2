"""A user's own network checked against their data before a forgetting run starts: it runs on a batch of the data,
gives one logit per class, its training loss is a finite scalar, and one training step fits the device's memory.
A failure is a ConfigError that says which, so nothing is recorded."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from know_core.common.errors import ConfigError
from know_core.data import Dataset
from know_core.engine.train import Loss
from know_core.models import check_fits

PROBE = 2  # inputs in the probing batch


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def check_user_model(model: nn.Module, ds: Dataset, batch: int, device: torch.device, loss: Loss) -> None:
    """Refuse ``model`` for ``ds`` (a ConfigError naming the problem) unless it maps a batch to (batch, ≥ classes)
    logits, ``loss`` of them is a finite scalar, and one training step fits ``device``'s memory."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameters")
    shape = "×".join(map(str, ds.input_shape))
    probe = copy.deepcopy(model).to(device)
    x, y = ds.x_train[:PROBE].to(device), ds.y_train[:PROBE].to(device)
    try:
        probe.eval()
        with torch.no_grad():
            logits = probe(x)
    except Exception as exc:  # noqa: BLE001 — the user's code: any failure is theirs to fix, said in one line
        raise ConfigError(f"the model fails on a batch of {len(x)} inputs of shape {shape} ({_short(exc)})") from None
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != len(x) \
            or logits.shape[1] < ds.num_classes:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(f"the model maps a batch of {len(x)} inputs of shape {shape} to {got}; it must give "
                          f"({len(x)}, {ds.num_classes}) logits, one per class of the data (labels 0…"
                          f"{ds.num_classes - 1})")
    try:
        value = loss(logits.detach().float().requires_grad_(), y)
    except Exception as exc:  # noqa: BLE001 — the user's loss
        raise ConfigError(f"the loss fails on the model's logits ({_short(exc)})") from None
    if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point() \
            or not value.requires_grad or not math.isfinite(float(value.detach())):
        got = (f"a {value.dtype} tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
               else type(value).__name__)
        raise ConfigError(f"the loss must return a finite scalar tensor that depends on the logits, got {got}")
    del probe
    try:
        meta = copy.deepcopy(model).to("meta")
        check_fits(meta, f"model {type(model).__name__}", ds.input_shape, batch, device)
    except ConfigError:
        raise
    except (NotImplementedError, RuntimeError, TypeError, ValueError):  # a model the meta device cannot run: no
        pass  # estimate beforehand; training itself will tell
