"""A tiny sweep (synthetic data, an MLP: 2 cells × 2 seeds, a few seconds a unit) and how to compare its tables."""

from __future__ import annotations

import pandas as pd
from experiment_helpers import tiny_experiment

from know_core.store.runstore import RunStore
from know_core.sweep import SweepSpec, create_sweep, run_sweep

VOLATILE = ("run_id",)  # differs by construction; cost_* columns are timings


def tiny_spec(seeds=(0, 1)) -> SweepSpec:
    return SweepSpec(tiny_experiment(), [("source.stages", [3, 4])], list(seeds))


def run_tiny(runs_dir, executor, spec=None, name="tiny") -> tuple[str, pd.DataFrame]:
    store = RunStore(runs_dir)
    sweep_id = create_sweep(store, spec or tiny_spec(), name)
    run_sweep(store, sweep_id, executor)
    return sweep_id, pd.read_parquet(store.root / sweep_id / "results.parquet")


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in table.columns if c not in VOLATILE and not c.startswith("cost_")]
    return table[keep].sort_values(["cell", "seed", "method", "scale"], na_position="first").reset_index(drop=True)


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(comparable(a), comparable(b), check_exact=False, rtol=0, atol=1e-6)
