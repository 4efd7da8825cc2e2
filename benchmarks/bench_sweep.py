"""Seed-batched forgetting runs vs one run at a time (issue 12, point 5), in one process.

K seeds of the digits simple_cnn source run (equal-steps protocol, r=0.5, S=5, warm oracles and control film, Θ0
pre-trained until validation accuracy stops improving) are recorded three ways: ``run_forgetting`` per seed (the
loop), ``run_forgetting_batched`` (exact: every member's gradients by its own net's kernels) and
``run_forgetting_batched(exact=False)`` (grouped backward kernels too). Reported: trajectories per minute of each, the
speed-ups, and how far each batched member's weights (every state of the film, the warm oracles and the control
film) are from its loop run, with the verdicts compared. Goal: ≥ 3× on 2 cores, per-seed results equal to the loop
within float tolerance (rtol 1e-4, atol 1e-5).

``OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--seeds 8] [--threads 1]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import _common
import torch

from know_core.data import load_dataset
from know_core.engine.batched import batchable, run_forgetting_batched
from know_core.engine.config import ForgetConfig
from know_core.engine.forgetting import run_forgetting
from know_core.engine.protocols import apply_protocol

RTOL, ATOL = 1e-4, 1e-5


def all_states(traj) -> list[dict[str, torch.Tensor]]:
    films = [traj.states] + [c.states for c in (traj.warm, traj.control) if c is not None]
    return [s for film in films for s in film]


def compare(loop: list, batched: list) -> dict:
    """The largest weight difference, whether every weight is within tolerance, and whether verdicts agree."""
    worst, within, verdicts = 0.0, True, True
    for (a, _), (b, _) in zip(loop, batched):
        sa, sb = all_states(a), all_states(b)
        within &= len(sa) == len(sb) and len(a.pretrain_history) == len(b.pretrain_history)
        for x, y in zip(sa, sb):
            for key in x:
                worst = max(worst, float((x[key] - y[key]).abs().max()))
                within &= torch.allclose(y[key], x[key], rtol=RTOL, atol=ATOL)
        verdicts &= a.forgot == b.forgot and a.stage_steps == b.stage_steps and a.cap_hit == b.cap_hit
    return {"max_abs_diff": worst, "within_tolerance": bool(within), "same_verdicts": bool(verdicts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as OMP_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = apply_protocol(ForgetConfig(dataset="digits", model="simple_cnn", r=0.5, stages=5, device="cpu"),
                          "equal-steps")
    cfgs = [dataclasses.replace(base, seed=s) for s in range(args.seeds)]
    ok, reason = batchable(cfgs)
    print(f"batchable: {ok} ({reason})")
    load_dataset("digits")  # data loading is not part of any run

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    loop, t_loop = timed(lambda: [run_forgetting(c) for c in cfgs])
    exact, t_exact = timed(lambda: run_forgetting_batched(cfgs))
    fast, t_fast = timed(lambda: run_forgetting_batched(cfgs, exact=False))
    k = len(cfgs)
    figures = {"dataset": "digits", "model": "simple_cnn", "protocol": base.protocol, "seeds": k,
               "threads": torch.get_num_threads(),
               "pretrain_epochs": [len(t.pretrain_history) for t, _ in loop],
               "loop_traj_per_min": 60 * k / t_loop, "batched_traj_per_min": 60 * k / t_exact,
               "fast_traj_per_min": 60 * k / t_fast, "speedup": t_loop / t_exact, "fast_speedup": t_loop / t_fast}
    figures.update(compare(loop, exact))
    figures.update({f"fast_{key}": v for key, v in compare(loop, fast).items()})
    figures["goal_met"] = figures["speedup"] >= 3 and figures["within_tolerance"] and figures["same_verdicts"]
    for label, t in (("loop", t_loop), ("batched (exact)", t_exact), ("batched (fast)", t_fast)):
        print(f"{label:<18}{t:8.1f} s  {60 * k / t:7.1f} trajectories/min  ×{t_loop / t:.2f}")
    _common.emit(figures)


if __name__ == "__main__":
    main()
