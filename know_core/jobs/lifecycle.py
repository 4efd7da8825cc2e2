"""Forgetting runs on disk: record a trajectory into the run store and load it back bit-identically."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from know_core.engine.config import ForgetConfig, to_dict
from know_core.common.errors import RunStoreError
from know_core.engine.forgetting import Continuation, Trajectory, preflight, run_forgetting
from know_core.store.loaders import Damaged
from know_core.engine.measure import ForgettingReport
from know_core.engine.protocols import describe
from know_core.store.schemas import check_groups, check_states
from know_core.store.snapshots import pack, read
from know_core.store.runstore import Run, RunStore, RunWriter
from know_core.engine.train import Hooks

if TYPE_CHECKING:
    from know_core.executors import Executor
    from know_core.experiment.spec import ExperimentConfig

TRAJECTORY_FILE = "trajectory.safetensors"
MAX_STEPS = 10  # rolled prediction steps: ×(1/r)^10 virtual data is already far beyond any meaning
FILM_FILES = {"warm": "warm.safetensors", "control": "control.safetensors"}


def _read_film(run: Run, name: str, film: str) -> tuple[list[dict], dict]:
    """The snapshots and metadata of film ``film`` in ``name`` (this format or the layout before it)."""
    films, meta = read(*run.read_tensors(name), name, film)
    if set(films) != {film}:
        raise Damaged(name, f"holds films {sorted(films)}, not {film!r}")
    return films[film], meta


def save_trajectory(writer: RunWriter, traj: Trajectory) -> None:
    """The stages are the snapshot film ``trajectory`` (groups in its header). The warm oracles and the control
    film, where recorded, go into snapshot files of their own with their sizes and scores."""
    writer.write_tensors(TRAJECTORY_FILE, *pack({"trajectory": traj.states}, {"groups": traj.groups}))
    for key, film in (("warm", traj.warm), ("control", traj.control)):
        if film is not None and film.states:
            writer.write_tensors(FILM_FILES[key], *pack({key: film.states}, {
                "sizes": film.sizes, "source_acc": film.source_acc, "source_loss": film.source_loss}))
    rep = traj.report
    writer.write_csv("metrics.csv", [
        {"stage": s, "size": n, "train_loss": loss, "source_acc": acc, "source_loss": sloss,
         "steps": traj.stage_steps[s] if s < len(traj.stage_steps) else "",
         "removed_acc": "" if rep is None or rep.removed_acc[s] is None else rep.removed_acc[s],
         "step_rel": "" if rep is None or rep.step_rel[s] is None else rep.step_rel[s],
         "step_cos": "" if rep is None or rep.step_cos[s] is None else rep.step_cos[s]}
        for s, (n, loss, acc, sloss) in enumerate(zip(traj.stage_sizes, traj.train_loss, traj.source_acc,
                                                       traj.source_loss))])
    writer.write_csv("pretrain.csv", traj.pretrain_history)


def _load_film(run: Run, key: str, theta0: dict, groups: dict) -> Continuation | None:
    """The warm oracles or the control film, checked like the trajectory (same tensors as Θ0, finite values)."""
    name = FILM_FILES[key]
    if not run.has(name):
        return None
    states, meta = _read_film(run, name, key)
    check_states([theta0, *states], groups, name)
    film = Continuation(states, meta["sizes"], meta["source_acc"], meta["source_loss"])
    if not len(film.sizes) == len(film.source_acc) == len(film.source_loss) == len(states):
        raise Damaged(name, "metadata lists do not match the stored stages")
    return film


def load_trajectory(run: Run) -> Trajectory:
    """The trajectory stored in ``run``, validated: a stage count in range, every stage the same finite tensors,
    groups naming real parameters, metrics matching the stages. Anything else is a Damaged error naming the file."""
    try:
        states, metadata = _read_film(run, TRAJECTORY_FILE, "trajectory")
        stages = len(states)
        groups = check_groups(metadata.get("groups"), TRAJECTORY_FILE, "metadata: groups")
        check_states(states, groups, TRAJECTORY_FILE)
        metrics = run.read_csv("metrics.csv")
        history = [{k: float(v) for k, v in row.items()} for row in run.read_csv("pretrain.csv")]
        if len(metrics) != stages:
            raise Damaged("metrics.csv", f"{len(metrics)} rows for {stages} stages")
        summary = run.read_json("summary.json") if run.has("summary.json") else {}
        report = ForgettingReport.from_dict(summary["forgetting"]) if summary.get("forgetting") else None
        return Trajectory(states, groups, [int(m["size"]) for m in metrics], [float(m["train_loss"]) for m in metrics],
                          [float(m["source_acc"]) for m in metrics], [float(m["source_loss"]) for m in metrics],
                          history, report, _load_film(run, "warm", states[0], groups),
                          _load_film(run, "control", states[0], groups),
                          [int(m["steps"]) for m in metrics if m.get("steps", "") != ""])
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
        raise Damaged(f"{TRAJECTORY_FILE} or metrics.csv", f"malformed ({str(exc)[:120]})", run.id) from None


def load_config(run: Run) -> ForgetConfig:
    return run.config()


def check_names(cfg: ForgetConfig) -> None:
    """The model and dataset named by ``cfg`` exist (checked before a run is recorded, like every other value)."""
    from know_core.data import load_dataset
    from know_core.common.errors import ConfigError
    from know_core.models import available_models, model_name

    if not isinstance(cfg.model, str) or model_name(cfg.model) not in available_models():
        raise ConfigError(f"unknown model {str(cfg.model)[:60]!r}; available: {', '.join(available_models())}")
    load_dataset(cfg.dataset, cfg.data_root)


def record_forgetting(cfg: ForgetConfig, store: RunStore, hooks: Hooks | None = None,
                      name: str | None = None) -> str:
    """Run structured forgetting for ``cfg`` and store it; returns the run id. Nothing is left half-written."""
    check_names(cfg)
    preflight(cfg)  # a refused config creates no run at all (its values were validated at the boundary)
    store.require_writable()
    t0 = time.perf_counter()
    with store.create("forget", to_dict(cfg), name) as writer:
        traj, timings = run_forgetting(cfg, hooks)
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


def open_forget_run(store: RunStore, run_id: str) -> tuple[Run, ForgetConfig, Trajectory]:
    run = store.open(run_id)
    if run.kind != "forget" or not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} holds no forgetting trajectory")
    return run, load_config(run), load_trajectory(run)


def record_experiment(cfg: "ExperimentConfig", store: RunStore, hooks: Hooks | None = None, name: str | None = None,
                      run_id: str | None = None, executor: "Executor | None" = None) -> str:
    """Run (or, with ``run_id``, resume) an experiment inside the run store; returns the run id.

    The run folder fills up seed by seed, so a failed or cancelled experiment keeps its finished seeds and a
    later call with the same ``run_id`` picks up from there.
    """
    from know_core.engine.config import to_dict
    from know_core.common.errors import Cancelled
    from know_core.experiment.pipeline import run_experiment

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


def seal_experiment(store: RunStore, run_id: str, cfg: "ExperimentConfig", results: dict) -> None:
    """Mark a finished experiment run done, with the summary its listing shows."""
    trajs = results["trajectories"]
    store.finish(run_id, {"preset": cfg.preset, "verdicts": results["verdicts"],
                          "forgot": all(t["forgot"] for t in trajs), "protocol": describe(cfg.source),
                          "forgetting": trajs[0].get("forgetting") if len(trajs) == 1 else None,
                          "forgetting_per_seed": [{"seed": t["seed"], **(t.get("forgetting") or {})} for t in trajs],
                          "total_s": results["timings"]["total_s"]})


def resume_run(store: RunStore, run_id: str, hooks: Hooks | None = None) -> str:
    """Resume a failed or cancelled run in this process; returns the id of the finished run.

    An experiment picks up from its finished seeds under the same id. A forget run keeps nothing when it fails, so
    it is run again from its recorded config as a new run, and the failed row is removed once that succeeds."""
    from know_core.store.loaders import read_json, run_folder
    from know_core.store.schemas import check_config

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
    new_id = record_forgetting(cfg, store, hooks, info.name)
    store.delete(run_id)
    return new_id


def check_run(store: RunStore, run_id: str) -> Run:
    """Open a finished run and read everything the pages and commands will: every file checksummed, the config,
    and the payload (an experiment's results and seeds, a forget run's trajectory) validated. Raises Damaged."""
    from know_core.experiment.seedweights import load_seed

    run = store.open(run_id)
    run.verify()
    run.config()
    if run.kind == "sweep":
        from know_core.sweep import read_sweep

        read_sweep(store, run_id)
    elif run.kind == "experiment":
        for traj in run.results()["trajectories"]:
            if run.has(f"seeds/seed-{traj['seed']}.safetensors"):
                load_seed(run, traj["seed"])
    else:
        load_trajectory(run)
    return run
