"""A tiny KNOW experiment (synthetic data, an MLP, oracles included) for the dashboard, jobs and analysis tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
from know_core.engine.finetune import FinetuneConfig
from know_core.experiment.spec import ExperimentConfig


def tiny_experiment(**overrides) -> ExperimentConfig:
    """Runs in a few seconds on one core: 2 synthetic classes → 2 others, r = 0.5, S = 4, ×2 and ×4 with oracles."""
    source = ForgetConfig(
        dataset="synthetic:0-1",
        model="mlp",
        r=0.5,
        stages=4,
        stage_budget="epochs:1",
        d0_fraction=0.25,
        device="cpu",
        optim=OptimConfig(batch_size=8),
        pretrain=PretrainConfig(max_epochs=4, patience=2),
    )
    base = dict(
        preset="tiny",
        source=source,
        target_dataset="synthetic:2-3",
        target_train=40,
        finetune=FinetuneConfig(epochs=2, batch_size=16),
        methods=["naive", "taskvector", "expfit"],
        scales=[2.0, 4.0],
        seeds=[0],
        oracles="auto",
    )
    base.update(overrides)
    return ExperimentConfig(**base)


def record_cnn_experiment(root: Path, name: str = "cnn") -> str:
    """Record :func:`tiny_experiment` with the simple CNN (layers 0, 3, 6, 9, 12, 14; S = 4; ×2 ×4) in ``root``;
    returns its id."""
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    cfg = tiny_experiment()
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, model="simple_cnn"))
    return record_experiment(cfg, RunStore(root), name=name)
