"""The meta-dataset's job grid: which forgetting runs to record, and how to run exactly one of them.

"List the jobs" and "run one job" are separate on purpose: the same deterministic list drives the local parallel
collector (``collection.py``) and a cluster, where each task runs ``python -m know_core collect --job ID``. A job is
identified by a hash of its resolved config, so its output file name says what it holds and a finished job is
recognised by name whatever machine made it.

Grids sample architectures, datasets, sampling rates r, learning rates, batch sizes, seeds and the stage budget
(``PROTOCOL_MIX``: release ``epochs:1`` with Adam carried, equal-steps ``steps:N`` with a fresh Adam per stage, and
``converge``) with a fixed seed; the budget is part of each job's config and so of its id.
r is drawn from the part of [0.3, 0.9] where every stage still holds a batch and every class (docs/method.md), so no job
is refused at run time. The ``heldout`` grids use a dataset (mnist-5k), an architecture (simple_cnn_wide) and seeds
that the training grids never use, each run recorded under both the release and the equal-steps protocol, with warm
oracles: they are what the backtest benchmark measures generalisation on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from know_core.common.errors import ConfigError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig, from_dict, to_dict
from know_core.engine.forgetting import source_split
from know_core.engine.protocols import apply_protocol
from know_core.predictors.known_net import STAGES as WINDOW

R_RANGE = (0.3, 0.9)
STAGES = WINDOW + 2  # two KNOWN windows with a next stage per weight (θ6..θ2 → θ1 and θ5..θ1 → θ0)


@dataclass(frozen=True)
class Job:
    """One forgetting run of the meta-dataset: a resolved ForgetConfig plus the grid it came from."""

    id: str
    grid: str
    config: dict[str, Any]

    def forget_config(self) -> ForgetConfig:
        return from_dict(ForgetConfig, self.config)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "grid": self.grid, "config": self.config}, sort_keys=True)


def job_id(config: dict[str, Any]) -> str:
    """A stable name for a config: the first 16 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def make_job(cfg: ForgetConfig, grid: str = "custom") -> Job:
    """A job for any validated config (tests, ad-hoc additions to a collection)."""
    cfg.validate()
    config = to_dict(cfg)
    return Job(job_id(config), grid, config)


# Per dataset: D0 share of the source pool, batch sizes, pre-training recipe, and whether the warm oracles and the
# control film are recorded. digits and synthetic keep D0 at half their pool so that the pool holds the supersets
# D_{−1} (and D_{−2} where r ≥ 0.71) of the warm oracles; Fashion-MNIST is cut to a few thousand images with capped
# pre-training so one job stays within a minute on a CPU, and records no warm or control film there (its control film
# alone costs ~20 s a job). ``converge`` jobs record none either: their control film trains to a plateau on D0 six
# times (up to 60 epochs of D0, minutes a job). Whether a job forgot is recorded, never selected on.
_DATASETS = {
    "digits": dict(d0=(0.5,), batch=(16, 32), pretrain=PretrainConfig(max_epochs=60, patience=8), warm="auto"),
    "synthetic": dict(d0=(0.5,), batch=(16, 32), pretrain=PretrainConfig(max_epochs=60, patience=8), warm="auto"),
    "fashion-mnist": dict(d0=(0.05, 0.08), batch=(32, 64), pretrain=PretrainConfig(max_epochs=15, patience=3),
                          warm="off"),
    "mnist-5k": dict(d0=(0.5,), batch=(32, 64), pretrain=PretrainConfig(max_epochs=20, patience=4), warm="auto"),
}
_HELDOUT_WARM = "auto"  # the held-out grid always records warm oracles: they are what the warm-oracle figures need
_LRS = (3e-4, 1e-3, 3e-3)

# The mix of stage budgets a training grid samples from, each with its optimiser handling (protocols.py):
# release = epochs:1 with Adam carried (the official collector); equal-steps = 3 epochs of D0 in optimiser steps on
# every stage with a fresh Adam; converge = each stage until its training loss stops falling (cap 10 epochs), fresh
# Adam.
PROTOCOL_MIX = (("release", 4), ("equal-steps", 4), ("converge", 2))
CONVERGE_BUDGET = "converge:10"
HELDOUT_PROTOCOLS = ("release", "equal-steps")  # every held-out run is recorded under both

# grid name -> (combos of (dataset, model, jobs per combo), seed range, sampling seed)
GRIDS: dict[str, tuple[list[tuple[str, str, int]], range, int]] = {
    "default": (
        [
            ("digits", "simple_cnn", 14),
            ("digits", "simple_cnn_narrow", 10),
            ("digits", "mlp", 14),
            ("digits", "small_resnet", 6),
            ("synthetic", "simple_cnn", 8),
            ("synthetic", "mlp", 12),
            ("synthetic", "simple_cnn_narrow", 8),
            ("synthetic", "small_resnet", 4),
            ("fashion-mnist", "simple_cnn", 2),
            ("fashion-mnist", "simple_cnn_narrow", 2),
            ("fashion-mnist", "mlp", 4),
        ],
        range(0, 1000),
        2026,
    ),
    "mini": ([("synthetic", "mlp", 2), ("digits", "simple_cnn_narrow", 1)], range(0, 1000), 7),
    "heldout": (
        [
            ("mnist-5k", "simple_cnn_wide", 3),
            ("mnist-5k", "simple_cnn", 2),
            ("mnist-5k", "mlp", 2),
            ("digits", "simple_cnn_wide", 4),
            ("fashion-mnist", "simple_cnn_wide", 1),
        ],
        range(5000, 6000),
        99,
    ),
    # the transfer report (benchmarks/bench_transfer.py): ViT films added to a meta-dataset, and held-out ViT and
    # MLP films (seeds no other grid uses, both protocols, warm oracles) on which KNOWN's transfer is measured
    "vit": ([("digits", "vit_tiny", 8)], range(2000, 3000), 31),
    "transfer": (
        [("digits", "vit_tiny", 3), ("mnist-5k", "vit_tiny", 2), ("digits", "mlp", 2), ("mnist-5k", "mlp", 2)],
        range(7000, 8000),
        41,
    ),
}
HELDOUT_GRIDS = ("heldout", "transfer")  # recorded under both protocols, with warm oracles


def with_protocol(cfg: ForgetConfig, protocol: str) -> ForgetConfig:
    """``cfg`` under one of the grid's protocols: a named one (protocols.py) or ``converge`` (the equal-steps
    recipe with a ``converge`` budget, recorded as ``equal-steps+custom``)."""
    if protocol == "converge":
        return dataclasses.replace(
            apply_protocol(cfg, "equal-steps"), stage_budget=CONVERGE_BUDGET, protocol="equal-steps+custom", warm="off"
        )
    return apply_protocol(cfg, protocol)


def feasible_r_min(n0: int, need: int, stages: int = STAGES) -> float:
    """Smallest r for which the last stage ⌊n0·r^(S−1)⌋ still holds ``need`` samples (with a 2 % margin)."""
    return min(1.0, 1.02 * (need / n0) ** (1.0 / (stages - 1)))


def _pool_size(dataset: str, d0_fraction: float, pretrain: PretrainConfig) -> tuple[int, int]:
    """(|D0|, class count), from ``forgetting.source_split`` itself."""
    ds = load_dataset(dataset)
    return source_split(
        ds, ForgetConfig(dataset=dataset, d0_fraction=d0_fraction, pretrain=pretrain)
    ).n0, ds.num_classes


def list_jobs(grid: str = "default") -> list[Job]:
    """The grid's jobs, in a fixed order (the same on every machine)."""
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}; available: {', '.join(GRIDS)}")
    combos, seeds, sample_seed = GRIDS[grid]
    rng = random.Random(sample_seed)
    names, weights = zip(*PROTOCOL_MIX)
    jobs, seen = [], set()
    for dataset, model, count in combos:
        spec = _DATASETS[dataset]
        for _ in range(count):
            batch, d0 = rng.choice(spec["batch"]), rng.choice(spec["d0"])
            n0, classes = _pool_size(dataset, d0, spec["pretrain"])
            r_low = max(R_RANGE[0], feasible_r_min(n0, max(batch, classes)))
            if r_low > R_RANGE[1]:
                raise ConfigError(f"grid {grid!r}: {dataset} with batch {batch} cannot hold {STAGES} stages")
            cfg = ForgetConfig(
                dataset=dataset,
                model=model,
                r=round(rng.uniform(r_low, R_RANGE[1]), 3),
                stages=STAGES,
                seed=rng.choice(seeds),
                d0_fraction=d0,
                device="cpu",
                warm=_HELDOUT_WARM if grid in HELDOUT_GRIDS else spec["warm"],
                optim=OptimConfig(lr=rng.choice(_LRS), batch_size=batch),
                pretrain=spec["pretrain"],
            )
            protocols = HELDOUT_PROTOCOLS if grid in HELDOUT_GRIDS else rng.choices(names, weights)
            for protocol in protocols:
                job = make_job(with_protocol(cfg, protocol), grid)
                if job.id not in seen:
                    seen.add(job.id)
                    jobs.append(job)
    return jobs


def find_job(job: str, grids: tuple[str, ...] | None = None) -> Job:
    """The job with id ``job`` from any known grid (the cluster path gets only the id)."""
    for name in grids or tuple(GRIDS):
        for candidate in list_jobs(name):
            if candidate.id == job:
                return candidate
    raise ConfigError(f"no job {job!r} in the grids {', '.join(grids or GRIDS)}; list them with `collect --list`")
