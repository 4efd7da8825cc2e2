"""A run's life-cycle: record a forgetting run or an experiment into the run store, resume a failed one, and check
a finished one end to end."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from know_core.common.errors import Cancelled, RunStoreError
from know_core.common.hooks import Hooks
from know_core.common.ledger import Ledger
from know_core.engine.config import ForgetConfig, to_dict
from know_core.engine.forgetting import Trajectory, preflight, run_forgetting
from know_core.engine.names import check_names, user_named
from know_core.engine.protocols import describe
from know_core.experiment.films import load_trajectory, save_trajectory
from know_core.experiment.pipeline import run_experiment, seal_experiment
from know_core.experiment.seedweights import is_prediction, load_seed
from know_core.imports.film import KIND as IMPORTED
from know_core.imports.film import open_imported_run
from know_core.store.loaders import Damaged, read_json, run_folder
from know_core.store.runstore import Run, RunStore
from know_core.store.schemas import check_config
from know_core.sweep import read_sweep

if TYPE_CHECKING:
    from know_core.executors import Executor
    from know_core.experiment.spec import ExperimentConfig


def record_forgetting(cfg: ForgetConfig, store: RunStore, hooks: Hooks | None = None,
                      name: str | None = None) -> str:
    """Run structured forgetting for ``cfg`` and store it; returns the run id. Nothing is left half-written."""
    check_names(cfg)
    preflight(cfg)  # a refused config creates no run at all (its values were validated at the boundary)
    return store_film(store, cfg, name, lambda: run_forgetting(cfg, hooks))


def store_film(store: RunStore, cfg: ForgetConfig, name: str | None,
               record: Callable[[], tuple[Trajectory, Ledger]]) -> str:
    """A new forget run of ``cfg`` holding the film ``record()`` makes, its summary and verdict; returns the run id.
    A failure or a cancel inside ``record`` leaves no run behind."""
    store.require_writable()
    t0 = time.perf_counter()
    with store.create("forget", to_dict(cfg), name) as writer:
        traj, timings = record()
        save_trajectory(writer, traj)
        timings["total_s"] = time.perf_counter() - t0
        writer.summary = {"forgot": traj.forgot, "verdict": traj.verdict(), "stage_sizes": traj.stage_sizes,
                          "source_acc": traj.source_acc, "timings": dict(timings), "ledger": timings.record(),
                          "protocol": describe(cfg),
                          "pretrain_epochs": len(traj.pretrain_history), "stage_steps": traj.stage_steps,
                          "cap_hit": traj.cap_hit, "forgetting": traj.report.to_dict() if traj.report else None,
                          "warm_sizes": traj.warm.sizes if traj.warm else []}
        writer.write_json("summary.json", writer.summary)
    return writer.id


def record_experiment(cfg: "ExperimentConfig", store: RunStore, hooks: Hooks | None = None, name: str | None = None,
                      run_id: str | None = None, executor: "Executor | None" = None) -> str:
    """Run (or, with ``run_id``, resume) an experiment inside the run store; returns the run id.

    The run folder fills up seed by seed, so a failed or cancelled experiment keeps its finished seeds and a
    later call with the same ``run_id`` picks up from there.
    """
    store.require_writable()  # the config was checked at the boundary (CLI, jobs.launch, the worker's start)
    if run_id is None:
        run_id = store.create_in_place("experiment", to_dict(cfg), name).name
    else:
        info = store.info(run_id)
        if info.kind != "experiment" or info.status == "done":
            raise RunStoreError(f"run {run_id} is a {info.status} {info.kind} run; only an unfinished experiment "
                                "can be resumed")
        store.claim(run_id)
    try:
        results = run_experiment(cfg, store.root / run_id, hooks, executor)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
        store.mark(run_id, status, f"{type(exc).__name__}: {exc}")
        raise
    seal_experiment(store, run_id, cfg, results)
    return run_id


def resume_run(store: RunStore, run_id: str, hooks: Hooks | None = None) -> str:
    """Resume a failed or cancelled run in this process; returns the id of the finished run.

    An experiment picks up from its finished seeds under the same id. A forget run keeps nothing when it fails, so
    it is run again from its recorded config as a new run, and the failed row is removed once that succeeds."""
    info = store.info(run_id)
    if info.status not in ("failed", "cancelled"):
        raise RunStoreError(f"run {run_id} is {info.status}; only a failed or cancelled run can be resumed")
    try:
        if info.kind == "experiment":
            cfg = check_config(read_json(run_folder(store.root, run_id), "config.json"), "experiment")
        else:
            cfg = check_config(info.config, "forget", "index row config")
    except Damaged as exc:
        raise exc.for_run(run_id) from None
    if info.kind == "experiment":
        return record_experiment(cfg, store, hooks, run_id=run_id)
    if user_named(cfg):
        raise RunStoreError(f"run {run_id} was recorded on your own model or data ({cfg.model}, {cfg.dataset}), which "
                            "the run does not hold; record it again with know_core.api.record_forgetting or forget "
                            "--model-factory/--data-factory")
    new_id = record_forgetting(cfg, store, hooks, info.name)
    store.delete(run_id)
    return new_id


def check_run(store: RunStore, run_id: str) -> Run:
    """Open a finished run and read everything the pages and commands will: every file checksummed, the config,
    and the payload (an experiment's results and seeds, a forget run's trajectory) validated. Raises Damaged. A
    film run's stored predictions (``pred-*``) are not among them: a damaged one is left out where it is read
    (:func:`~know_core.experiment.seedweights.stored_predictions`) and the film stays readable."""
    run = store.open(run_id)
    run.verify([name for name in run.manifest["files"] if not is_prediction(name)])
    run.config()
    if run.kind == "sweep":
        read_sweep(store, run_id)
    elif run.kind == "experiment":
        for traj in run.results()["trajectories"]:
            if run.has(f"seeds/seed-{traj['seed']}.safetensors"):
                load_seed(run, traj["seed"])
    elif run.kind == IMPORTED:
        open_imported_run(store, run_id)
    else:
        load_trajectory(run)
    return run
