"""Record a forgetting film on your own network and data, from Python (a notebook, a script): the protocol the
``forget`` command runs, on any ``torch.nn.Module`` and map-style ``torch.utils.data.Dataset``, stored as an ordinary
forget run that the pages and commands open.

    import torchvision
    from know_core.api import record_forgetting
    run_id = record_forgetting(torchvision.models.resnet18(num_classes=10), train_set, test_set,
                               r=0.5, stages=4, stage_budget="epochs:1", runs_dir="runs")

(``know_core.record_forgetting``, as issue 19 spelled it, would make ``import know_core`` — run before any of its
modules, the CLI's included — import torch and the whole engine; the library function lives here instead.)
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from know_core.common.hooks import Hooks
from know_core.data.resident import resident_dataset
from know_core.engine.budget import StageBudget
from know_core.engine.config import ForgetConfig, with_overrides
from know_core.engine.train import Loss
from know_core.jobs.userfilm import record_user_forgetting, user_name
from know_core.store.runstore import DEFAULT_RUNS_DIR, RunStore


def record_forgetting(model: nn.Module, train_set: Any, test_set: Any = None, *, r: float, stages: int,
                      stage_budget: str | StageBudget, optimizer: str = "adam", lr: float = 1e-3,
                      batch_size: int | None = None, loss: Loss | None = None, device: str = "auto",
                      pretrain_epochs: int | None = None, warm: str = "auto", seed: int = 0,
                      settings: dict[str, Any] | None = None, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR,
                      name: str | None = None, model_name: str | None = None, data_name: str | None = None,
                      hooks: Hooks | None = None) -> str:
    """Pre-train Θ0 from ``model`` on D0 (all of ``train_set`` unless ``settings`` sets ``d0_fraction``), fine-tune it
    on nested subsets D_s = ⌊|D0|·r^s⌋ for ``stages`` − 1 stages under ``stage_budget`` (``"epochs:1"``,
    ``"steps:200"``, ``"converge:50"``), judge the film (the forgetting verdict on ``test_set``: a paired test of
    test loss, Θ0 against the last stage), record the warm oracles on real supersets where the pool holds them
    (``warm``: auto / on / off) and the control film, and store it all as a forget run in ``runs_dir``. Returns the
    run id (``python -m know_core runs show RUN_ID``; the Trajectory page opens it).

    - ``model``: any ``nn.Module`` mapping a batch of inputs to (batch, classes) logits; it is deep-copied, never
      changed. ``train_set``/``test_set``: map-style datasets of (input tensor, class index) items (a
      ``TensorDataset`` of inputs and labels too), read into memory once — refused beyond 8 GiB or half the free
      memory. Without ``test_set`` a fixed class-stratified fifth of ``train_set`` is held out as the test set.
    - ``optimizer``: ``adam``, ``adamw`` or ``sgd`` with ``lr`` and ``batch_size`` (default 128): the recipe of
      pre-training and of every stage. ``loss(logits, labels)``: the training loss (default cross-entropy); the
      verdict always measures test cross-entropy. ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda[:N]``.
    - ``pretrain_epochs``: most pre-training epochs (early stop on validation accuracy; default 100).
      ``settings``: any other config key, dotted, as ``--set`` takes it (``{"d0_fraction": 0.25,
      "carry_optimizer": False, "optim.weight_decay": 5e-4}``).
    - ``model_name``/``data_name``: how the run names them (``user:<name>``; default the classes' names).

    Bad values, data or models raise a :class:`~know_core.common.errors.KnowError` naming the problem before
    anything is recorded; a failure or cancel (``hooks``) while training leaves no run behind.
    """
    overrides = {"r": r, "stages": stages, "stage_budget": str(stage_budget), "optim.optimizer": optimizer,
                 "optim.lr": lr, "optim.batch_size": batch_size, "device": device, "warm": warm, "seed": seed,
                 **({"pretrain.max_epochs": pretrain_epochs} if pretrain_epochs is not None else {}),
                 **(settings or {}),
                 "model": user_name(model_name or model), "dataset": user_name(data_name or train_set)}
    cfg = with_overrides(ForgetConfig(), overrides)
    cfg.validate()  # the boundary: checked once, the engine trusts it from here
    store = RunStore(runs_dir)
    store.require_writable()
    ds = resident_dataset(cfg.dataset, train_set, test_set, hooks)
    return record_user_forgetting(model, ds, cfg, store, hooks, name, loss)


__all__ = ["record_forgetting"]
