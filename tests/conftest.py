"""Shared fixtures: tiny configs (synthetic data, small models, few epochs) so the whole suite stays fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Tiny models train as fast on one thread as on two, and two OpenMP pools spinning on 2 shared cores (a server and a
# worker, or pytest and a subprocess) slow each other down by 10-50x. Set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KNOW_RAISE_PAGE_ERRORS", "1")  # app.py shows its own message to users; tests want tracebacks

import pytest

from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
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


@pytest.fixture(autouse=True)
def _keep_the_main_module():
    """AppTest runs a page as ``__main__`` and leaves it in ``sys.modules``; a later test in the same process that
    spawns workers (multiprocessing's spawn re-runs ``__main__`` by its path in the child) then ran that page in every
    child — seen as a timeout of ``test_concurrent_readers_and_writers`` after the Present page's tests. Put the real
    ``__main__`` back after each test."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


@pytest.fixture
def tiny_cfg() -> ForgetConfig:
    return tiny_config()


@pytest.fixture(scope="session")
def stored_run(tmp_path_factory):
    """(runs dir, run id) of one finished tiny forgetting run, shared by read-only tests."""
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs")
    run_id = record_forgetting(tiny_config(model="simple_cnn"), RunStore(root))
    return root, run_id

