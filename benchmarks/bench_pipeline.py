"""Where the KNOW experiment's time goes: each phase's share of the wall time for the quick and standard presets.

Phases per seed: pre-training Θ0, forgetting, the warm oracles and the control film, predicting (all methods, all
scales), training the cold oracles,
fine-tuning every initialisation on the target, backtesting. Goals (issue 5): quick ≤ 60 s; standard ≤ 5 min per
seed on 2 CPU cores; the predictors a small fraction. ``--seeds N`` sets the standard preset's seeds (default 1).
"""

from __future__ import annotations

import _common

import argparse
import tempfile
import time

from know_core.data import fashion_mnist_available
from know_core.experiment import preset
from know_core.pipeline import run_experiment

PHASES = ("pretrain_s", "forgetting_s", "warm_s", "control_s", "predict_s", "oracles_s", "finetune_s", "backtest_s")


def measure(name: str, seeds: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        results = run_experiment(preset(name, seeds=seeds), out)
        wall = time.perf_counter() - t0
    totals = {p: sum(s.get(p, 0.0) for s in results["timings"]["per_seed"]) for p in PHASES}
    print(f"\n{name}: {wall:.1f} s for {len(seeds)} seed(s) ({wall / len(seeds):.1f} s per seed)")
    for phase in PHASES:
        print(f"  {phase[:-2]:<12}{totals[phase]:8.1f} s  {totals[phase] / wall:6.1%}")
    figures = {f"{name}_wall_s": wall, f"{name}_per_seed_s": wall / len(seeds)}
    figures.update({f"{name}_{p[:-2]}_share": totals[p] / wall for p in PHASES})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--quick-only", action="store_true", help="time the quick preset alone")
    args = parser.parse_args()
    figures = measure("quick", [0])
    figures["quick_goal_met"] = figures["quick_wall_s"] <= 60
    if args.quick_only:
        pass
    elif fashion_mnist_available():
        figures.update(measure("standard", list(range(args.seeds))))
        figures["standard_goal_met"] = figures["standard_per_seed_s"] <= 300
    else:
        print("standard: skipped (apt-get install -y dataset-fashion-mnist)")
    _common.emit(figures)


if __name__ == "__main__":
    main()
