"""Shared fixtures: tiny configs (synthetic data, small models, few epochs) so the whole suite stays fast."""

from __future__ import annotations

import os
from pathlib import Path

# Tiny models train as fast on one thread as on two, and two OpenMP pools spinning on 2 shared cores (a server and a
# worker, or pytest and a subprocess) slow each other down by 10-50x. Set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KNOW_RAISE_PAGE_ERRORS", "1")  # app.py shows its own message to users; tests want tracebacks

import pytest

from know_core.config import ForgetConfig, OptimConfig, PretrainConfig
from know_core.predictors.keras_import import official_known_folder

REPO = Path(__file__).resolve().parents[1]
# The authors' KNOWN files never enter the repository: $KNOW_OFFICIAL_KNOWN names them, else the sibling folder where
# this project's machines keep them; tests that need them skip (saying where they looked) when neither has them.
OFFICIAL_KNOWN = Path(official_known_folder() or REPO.parent / "shared" / "official-known")


def tiny_config(**overrides) -> ForgetConfig:
    """A forgetting run that takes well under a second on 2 CPU cores."""
    base = dict(dataset="synthetic", model="mlp", r=0.5, stages=4, stage_budget="epochs:1", seed=0, device="cpu",
                optim=OptimConfig(batch_size=32), pretrain=PretrainConfig(max_epochs=4, patience=2))
    base.update(overrides)
    return ForgetConfig(**base)


@pytest.fixture
def tiny_cfg() -> ForgetConfig:
    return tiny_config()


@pytest.fixture(scope="session")
def stored_run(tmp_path_factory):
    """(runs dir, run id) of one finished tiny forgetting run, shared by read-only tests."""
    from know_core.runs import record_forgetting
    from know_core.store import RunStore

    root = tmp_path_factory.mktemp("runs")
    run_id = record_forgetting(tiny_config(model="simple_cnn"), RunStore(root))
    return root, run_id

