"""Where the KNOW experiment's time goes: each phase's share of the wall time for the quick and standard presets.

Phases per seed: pre-training Θ0, forgetting, the warm oracles and the control film, predicting (all methods, all
scales), training the cold oracles,
fine-tuning every initialisation on the target, backtesting. Goals: quick ≤ 60 s on 2 idle CPU cores and ≤ 90 s with
one other CPU-bound process running (both timed in one run: ``quick_*`` idle, ``quick_loaded_*`` beside a
``while True: pass`` process); standard ≤ 5 min per seed on 2 CPU cores; the predictors a small fraction. Threads are
chosen as the worker chooses them (know_core.common.threads: the free cores, re-checked at phase boundaries), so leave
OMP_NUM_THREADS and KNOW_THREADS unset. ``--seeds N`` sets the standard preset's seeds (default 1); ``--quick-only``
times the quick preset alone (idle and loaded, about 3 minutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import _common

from know_core.common.hooks import Hooks
from know_core.common.threads import Adaptive, env_threads
from know_core.data.fashion_mnist import fashion_mnist_available
from know_core.experiment.pipeline import run_experiment
from know_core.experiment.spec import preset

PHASES = ("pretrain_s", "forgetting_s", "warm_s", "control_s", "predict_s", "oracles_s", "finetune_s", "backtest_s")


def measure(name: str, seeds: list[int], label: str | None = None) -> dict:
    label = label or name
    threads = Adaptive()
    hooks = Hooks(progress=threads.chain(None))
    cfg = preset(name, seeds=seeds)  # data loaded before the clock starts: the idle and loaded runs time the same work
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        results = run_experiment(cfg, out, hooks)
        wall = time.perf_counter() - t0
    threads.tick(force=True)
    busy = sum(threads.loads) / len(threads.loads)
    totals = {p: sum(s.get(p, 0.0) for s in results["timings"]["per_seed"]) for p in PHASES}
    used = sorted({n for _, n in threads.changes})
    print(f"\n{label}: {wall:.1f} s for {len(seeds)} seed(s) ({wall / len(seeds):.1f} s per seed), threads "
          f"{'/'.join(map(str, used))}, other processes' load {busy:.2f} cores on average; "
          f"{results['trajectories'][0]['verdict'][:60]}")
    for phase in PHASES:
        print(f"  {phase[:-2]:<12}{totals[phase]:8.1f} s  {totals[phase] / wall:6.1%}")
    figures = {f"{label}_wall_s": wall, f"{label}_per_seed_s": wall / len(seeds),
               f"{label}_threads": "/".join(map(str, used)), f"{label}_other_load_cores": busy,
               f"{label}_forgot": results["trajectories"][0]["forgot"]}
    figures.update({f"{label}_{p[:-2]}_share": totals[p] / wall for p in PHASES})
    return figures


def measure_loaded(name: str) -> dict:
    """``name`` timed while one other CPU-bound process spins (started a second before, so the first thread choice
    sees it)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        return measure(name, [0], f"{name}_loaded")
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--quick-only", action="store_true", help="time the quick preset alone (idle and loaded)")
    args = parser.parse_args()
    if env_threads() is not None:
        print(f"note: the thread count is fixed by KNOW_THREADS/OMP_NUM_THREADS ({env_threads()}), not chosen "
              "from the free cores as the worker would", file=sys.stderr)
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    figures = measure("quick", [0])
    figures["quick_goal_met"] = figures["quick_wall_s"] <= 60
    figures.update(measure_loaded("quick"))
    figures["quick_loaded_goal_met"] = figures["quick_loaded_wall_s"] <= 90
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
