"""Runs read as typed objects: an experiment's results, a forget run's trajectory, one seed's stored weights.

Every read goes through the run store's bounded, validated loaders (:mod:`know_core.store.loaders`,
:mod:`know_core.store.schemas`, :func:`know_core.jobs.lifecycle.check_run`); this module only turns what they return
into dataclasses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from know_core.common.errors import RunStoreError
from know_core.engine.config import ForgetConfig, scale_of_steps
from know_core.engine.forgetting import Trajectory
from know_core.engine.measure import ForgettingReport
from know_core.experiment.films import open_forget_run
from know_core.experiment.panels import report_of
from know_core.experiment.seedweights import SeedWeights, load_seed, stored_predictions
from know_core.experiment.spec import ExperimentConfig
from know_core.experiment.stats import MEAN, domain_mean_rows, domain_prefix, domains_of
from know_core.jobs.lifecycle import check_run
from know_core.store.runstore import RunInfo, RunStore
from know_core.store.schemas import check_config


@dataclass
class SeedTrajectory:
    """One seed's forgetting film as ``results.json`` records it; ``record`` is that entry, as validated."""

    seed: int
    forgot: bool
    verdict: str
    source_acc: list[float]
    stage_sizes: list[int]
    report: ForgettingReport | None
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "SeedTrajectory":
        return cls(
            seed=record["seed"],
            forgot=record["forgot"],
            verdict=record["verdict"],
            source_acc=list(record["source_acc"]),
            stage_sizes=list(record["stage_sizes"]),
            report=report_of(record),
            record=record,
        )


@dataclass
class ExperimentResult:
    """A finished experiment: its config, result rows (one per seed, method and scale), summary entries (mean, std
    and differences per method and scale), verdicts, backtest and retrodiction rows, and every seed's film."""

    config: ExperimentConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    verdicts: list[str]
    backtest: list[dict[str, Any]]
    retrodiction: list[dict[str, Any]]
    trajectories: list[SeedTrajectory]
    timings: dict[str, Any]
    known_checkpoint: dict[str, Any] | None = None  # which default KNOWN made the ``known`` rows (sha256, command)

    @property
    def r(self) -> float:
        return float(self.config.source.r)

    @property
    def seeds(self) -> list[int]:
        return [t.seed for t in self.trajectories]

    def trajectory(self, seed: int) -> SeedTrajectory:
        return next(t for t in self.trajectories if t.seed == seed)

    @property
    def domains(self) -> list[int | str]:
        """The held-out domains the target was evaluated on (a ``rotated:`` target), in order, then ``mean`` (their
        average, where there are several); [] when it has none."""
        found = [d for d in domains_of(self.rows) if d is not None]
        return found + [MEAN] if len(found) > 1 else found

    def at_domain(self, domain: int | str | None) -> "ExperimentResult":
        """This result with only the rows, summary entries and verdicts of one held-out domain, or of their ``mean``
        (rows averaged over the domains per method, scale and seed); None: unchanged."""
        if domain is None or not self.domains:
            return self
        others = tuple(domain_prefix(d) for d in self.domains if d != domain)
        rows = domain_mean_rows(self.rows) if domain == MEAN else self.rows
        return replace(
            self,
            rows=[r for r in rows if r.get("domain") == domain],
            summary=[e for e in self.summary if e.get("domain") == domain],
            verdicts=[v for v in self.verdicts if not v.startswith(others)],
        )


@dataclass
class ForgetRun:
    """A finished forget run: its config and the trajectory Θ0 … Θ_{S−1} with what was measured."""

    config: ForgetConfig
    trajectory: Trajectory


def open_store(root: str | os.PathLike) -> RunStore:
    """The run store under ``root`` (made when missing); RunStoreError when it cannot be used."""
    return RunStore(root)


def damage(root: str | os.PathLike, run_id: str) -> str | None:
    """Why a finished run cannot be read (a file missing, corrupt, too big, outside its folder or of the wrong
    shape), or None when it is whole."""
    try:
        check_run(RunStore(root), run_id)
    except RunStoreError as exc:
        return str(exc)
    return None


def load_experiment(root: str | os.PathLike, run_id: str) -> ExperimentResult:
    """A finished experiment's results.json, verified against its manifest and validated, as typed objects."""
    return experiment_result(RunStore(root).open(run_id).results())


def experiment_result(data: dict[str, Any]) -> ExperimentResult:
    """A results.json already read and checked (:func:`know_core.store.schemas.check_results`) as typed objects."""
    return ExperimentResult(
        config=check_config(data["config"], "experiment", "results.json: config"),
        rows=data["rows"],
        summary=data["summary"],
        verdicts=data["verdicts"],
        backtest=data.get("backtest", []),
        retrodiction=data.get("retrodiction") or [],
        trajectories=[SeedTrajectory.from_record(t) for t in data["trajectories"]],
        timings=data["timings"],
        known_checkpoint=data.get("known_checkpoint"),
    )


def load_forget_run(root: str | os.PathLike, run_id: str) -> ForgetRun:
    _, cfg, traj = open_forget_run(RunStore(root), run_id)
    return ForgetRun(config=cfg, trajectory=traj)


def load_seed_weights(root: str | os.PathLike, run_id: str, seed: int) -> SeedWeights:
    """One seed's stored networks: the film, every prediction, the oracles and warm oracles (checked). A forget run
    has one seed (its config's) and holds the film, its warm oracles, its control film and the predictions
    ``predict --run`` stored in it (method → scale → state dict); one whose file is damaged is left out, and
    ``damaged`` says why."""
    run = RunStore(root).open(run_id)
    if run.kind != "forget":
        return load_seed(run, seed)
    forget = load_forget_run(root, run_id)
    if seed != forget.config.seed:
        raise RunStoreError(f"run {run_id} is a forget run of seed {forget.config.seed}, not {seed}")
    traj, r = forget.trajectory, forget.config.r
    warm = {scale_of_steps(k, r): state for k, state in enumerate(traj.warm.states if traj.warm else [], 1)}
    damaged: dict[str, str] = {}  # a stored prediction that cannot be read is left out, and said why
    preds = {m: p.by_scale(r) for m, p in stored_predictions(run, traj.states[0], damaged).items()}
    return SeedWeights(seed, traj.groups, traj.states, preds, {}, _film_record(forget), warm,
                       traj.control.states if traj.control else [], damaged)


def load_film_result(root: str | os.PathLike, run_id: str) -> ExperimentResult:
    """A run with a forgetting film as the Trajectory page reads it: an experiment's results, or a forget run as an
    experiment of one seed with no predictions, oracles or downstream rows (its scales: the warm oracles')."""
    run = RunStore(root).open(run_id)
    if run.kind != "forget":
        return experiment_result(run.results())
    forget = load_forget_run(root, run_id)
    cfg, traj = forget.config, forget.trajectory
    scales = [scale_of_steps(k, cfg.r) for k in range(1, len(traj.warm.states) + 1)] if traj.warm else []
    config = ExperimentConfig(source=cfg, methods=[], scales=scales, seeds=[cfg.seed], oracles="off")
    return ExperimentResult(config, [], [], [], [], [], [SeedTrajectory.from_record(_film_record(forget))], {})


def _film_record(forget: ForgetRun) -> dict[str, Any]:
    """A forget run's film in the form of an experiment seed's ``trajectories`` entry."""
    traj = forget.trajectory
    film = lambda c: None if c is None else {"sizes": c.sizes, "source_acc": c.source_acc,  # noqa: E731
                                             "source_loss": c.source_loss}
    return {"seed": forget.config.seed, "forgot": traj.forgot, "verdict": traj.verdict(),
            "source_acc": traj.source_acc, "source_acc_stages": traj.source_acc, "stage_sizes": traj.stage_sizes,
            "stage_steps": traj.stage_steps,
            "cap_hit": traj.cap_hit, "forgetting": traj.report.to_dict() if traj.report else None,
            "groups": traj.groups, "warm": film(traj.warm), "control": film(traj.control)}


__all__ = [
    "ExperimentResult",
    "ForgetRun",
    "RunInfo",
    "RunStore",
    "SeedTrajectory",
    "SeedWeights",
    "damage",
    "experiment_result",
    "load_experiment",
    "load_film_result",
    "load_forget_run",
    "load_seed_weights",
    "open_store",
]
