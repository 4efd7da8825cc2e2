"""The executors' overhead on the same grid: one sweep (digits simple_cnn, 2 cells × 3 seeds, forgetting and
retrodiction) run under ``local`` and ``ray`` (a local Ray instance, started and stopped inside the timing), each with
two workers; then the same number of ``probe`` units that do nothing, to isolate the per-unit cost. Tables must be
identical (to 1e-6); the figure is Ray's wall time over local's.

``python benchmarks/bench_executors.py [--seeds 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common
import pandas as pd

from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
from know_core.engine.protocols import apply_protocol
from know_core.executors import Unit, make_executor
from know_core.experiment.spec import ExperimentConfig
from know_core.store.runstore import RunStore
from know_core.sweep import SweepSpec, create_sweep, run_sweep

WORKERS = 2


def spec(seeds: int) -> SweepSpec:
    source = apply_protocol(ForgetConfig(dataset="digits", model="simple_cnn", r=0.5, stages=4, d0_fraction=0.5,
                                         device="cpu", optim=OptimConfig(batch_size=32),
                                         pretrain=PretrainConfig(max_epochs=20, patience=4), warm="auto"),
                            "equal-steps")
    base = ExperimentConfig(source=source, methods=["naive", "taskvector", "expfit"], scales=[2.0],
                            oracles="off")
    return SweepSpec(base, [("source.r", [0.5, 0.7])], list(range(seeds)), ["forgetting", "retrodiction"])


def timed_sweep(name: str, seeds: int, root: Path) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    executor = make_executor(name, WORKERS)
    try:
        store = RunStore(root / name)
        sweep_id = create_sweep(store, spec(seeds), name)
        run_sweep(store, sweep_id, executor)
    finally:
        executor.close()
    seconds = time.perf_counter() - t0
    table = pd.read_parquet(store.root / sweep_id / "results.parquet")
    keep = [c for c in table.columns if c != "run_id" and not c.startswith("cost_")]
    return seconds, table[keep].sort_values(["cell", "seed", "method", "k"]).reset_index(drop=True)


def timed_probes(name: str, n: int, root: Path) -> float:
    t0 = time.perf_counter()
    executor = make_executor(name, WORKERS)
    try:
        executor.execute([Unit(f"p{i}", "probe", {"name": f"p{i}"}, str(root / f"probe-{name}")) for i in range(n)])
    finally:
        executor.close()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local_s, local = timed_sweep("local", args.seeds, root)
        ray_s, ray = timed_sweep("ray", args.seeds, root)
        pd.testing.assert_frame_equal(local, ray, check_exact=False, rtol=0, atol=1e-6)
        units = 2 * args.seeds
        probe_local, probe_ray = timed_probes("local", units, root), timed_probes("ray", units, root)
    print(f"sweep of {units} units: local {local_s:.1f} s, ray {ray_s:.1f} s; {units} empty units: local "
          f"{probe_local:.1f} s, ray {probe_ray:.1f} s; tables identical")
    _common.emit({"units": units, "workers": WORKERS, "local_s": local_s, "ray_s": ray_s,
                  "ray_over_local": ray_s / local_s, "empty_local_s": probe_local, "empty_ray_s": probe_ray,
                  "tables_identical": True})


if __name__ == "__main__":
    main()
