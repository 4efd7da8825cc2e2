"""Seed-batched forgetting runs: many seeds of one configuration trained as one stacked model.

``run_forgetting_batched(cfgs)`` gives, for every config, what ``forgetting.run_forgetting(cfg)`` gives (Θ0 by the
same early-stopping rule, the forgetting film, the warm oracles and the control film), bit for bit with one thread
(tests/test_batched.py; with more, the batched kernels split their sums otherwise and the weights drift by rounding
amplified over the steps): each member has its own initialisation, subset order, generator (shuffles, augmentation),
optimiser state and stopping epoch (members that stop early sit out, masked, while the others go on). What differs
is the cost: on small models a training step is mostly fixed overhead, and K members share one step's overhead.

``batchable(cfgs)`` says whether the runs qualify (same config but the seed, a model ``stacked.py`` covers) and why
not. Docs: docs/forgetting.md, "Seed-batched runs".
"""

from __future__ import annotations

import dataclasses

from know_core.common.errors import ConfigError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig, to_dict
from know_core.engine.forgetting import WARM_MAX_STEPS, Trajectory, run_forgetting, run_members
from know_core.engine.stacked import stack_support
from know_core.engine.train import Hooks
from know_core.models import create_model


def batchable(cfgs: list[ForgetConfig]) -> tuple[bool, str]:
    """(True, what will happen) when ``cfgs`` can run as one stacked model, else (False, why not)."""
    if len(cfgs) < 2:
        return False, "a single run: nothing to batch"
    base = to_dict(dataclasses.replace(cfgs[0], seed=0))
    differ = sorted({k for c in cfgs[1:] for k, v in to_dict(dataclasses.replace(c, seed=0)).items() if base[k] != v})
    if differ:
        return False, f"the runs differ in more than the seed ({', '.join(differ)})"
    cfg = cfgs[0]
    try:
        ds = load_dataset(cfg.dataset, cfg.data_root)
        reason = stack_support(create_model(cfg.model, ds.input_shape, ds.num_classes))
    except ConfigError as err:
        return False, str(err)
    if reason:
        return False, f"model {cfg.model} is not batched: {reason}"
    return True, f"{len(cfgs)} seeds of {cfg.model} on {cfg.dataset} trained as one stacked model"


def run_seeds(cfgs: list[ForgetConfig], hooks: Hooks | None = None,
              warm_steps: int = WARM_MAX_STEPS) -> tuple[list[tuple[Trajectory, dict[str, float]]], str]:
    """Every config's run, stacked where :func:`batchable` allows, else one after another; with the reason."""
    ok, reason = batchable(cfgs)
    if ok:
        return run_forgetting_batched(cfgs, hooks, warm_steps), f"batched: {reason}"
    return [run_forgetting(c, hooks, warm_steps) for c in cfgs], f"one run at a time: {reason}"


def run_forgetting_batched(cfgs: list[ForgetConfig], hooks: Hooks | None = None, warm_steps: int = WARM_MAX_STEPS,
                           exact: bool = True) -> list[tuple[Trajectory, dict[str, float]]]:
    """``[run_forgetting(c) for c in cfgs]``, trained as one stacked model (``forgetting.run_members``). Timings are
    each run's share of the batch's wall time per phase, with ``batched_members`` = K. ``exact=False`` runs the grouped
    backward kernels too: faster, but each member then drifts from its own run by float rounding amplified over the
    steps (stacked.py)."""
    ok, reason = batchable(cfgs)
    if not ok:
        raise ConfigError(f"these runs cannot be batched: {reason}")
    trajs, timings = run_members(cfgs, hooks, warm_steps, exact)
    share = {name: s / len(cfgs) for name, s in timings.items()}
    return [(traj, {**share, "batched_members": float(len(cfgs))}) for traj in trajs]
