"""Forgetting runs on disk: record a trajectory into the run store and load it back bit-identically."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .config import ForgetConfig, from_dict, to_dict
from .errors import RunStoreError
from .forgetting import Continuation, Trajectory, preflight, run_forgetting
from .measure import ForgettingReport
from .protocols import describe
from .store import Run, RunStore, RunWriter
from .train import Hooks

if TYPE_CHECKING:
    from .experiment import ExperimentConfig

TRAJECTORY_FILE = "trajectory.safetensors"
FILM_FILES = {"warm": "warm.safetensors", "control": "control.safetensors"}


def _film_tensors(states: list[dict]) -> dict:
    return {f"{s}/{name}": t for s, state in enumerate(states) for name, t in state.items()}


def _film_states(tensors: dict, count: int) -> list[dict]:
    states: list[dict] = [{} for _ in range(count)]
    for key, tensor in tensors.items():
        stage, name = key.split("/", 1)
        states[int(stage)][name] = tensor
    return states


def save_trajectory(writer: RunWriter, traj: Trajectory) -> None:
    """Stage s's tensors are stored as ``"{s}/{name}"``; groups and sizes travel in the file's metadata. The warm
    oracles and the control film, where recorded, go into files of the same layout with their sizes and scores."""
    writer.write_tensors(TRAJECTORY_FILE, _film_tensors(traj.states),
                         {"groups": json.dumps(traj.groups), "stages": str(len(traj.states))})
    for key, film in (("warm", traj.warm), ("control", traj.control)):
        if film is not None:
            writer.write_tensors(FILM_FILES[key], _film_tensors(film.states),
                                 {"stages": str(len(film.states)), "sizes": json.dumps(film.sizes),
                                  "source_acc": json.dumps(film.source_acc),
                                  "source_loss": json.dumps(film.source_loss)})
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


def _load_film(run: Run, key: str) -> Continuation | None:
    if not run.has(FILM_FILES[key]):
        return None
    tensors, meta = run.read_tensors(FILM_FILES[key])
    return Continuation(_film_states(tensors, int(meta["stages"])), json.loads(meta["sizes"]),
                        json.loads(meta["source_acc"]), json.loads(meta["source_loss"]))


def load_trajectory(run: Run) -> Trajectory:
    """The trajectory stored in ``run``; a missing or damaged file is a RunStoreError naming it."""
    tensors, metadata = run.read_tensors(TRAJECTORY_FILE)
    try:
        states = _film_states(tensors, int(metadata["stages"]))
        groups = json.loads(metadata["groups"])
        metrics = run.read_csv("metrics.csv")
        history = [{k: float(v) for k, v in row.items()} for row in run.read_csv("pretrain.csv")]
        summary = run.read_json("summary.json") if run.has("summary.json") else {}
        report = ForgettingReport.from_dict(summary["forgetting"]) if summary.get("forgetting") else None
        return Trajectory(states, groups, [int(m["size"]) for m in metrics], [float(m["train_loss"]) for m in metrics],
                          [float(m["source_acc"]) for m in metrics], [float(m["source_loss"]) for m in metrics],
                          history, report, _load_film(run, "warm"), _load_film(run, "control"),
                          [int(m["steps"]) for m in metrics if m.get("steps", "") != ""])
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise RunStoreError(f"run {run.id}: {TRAJECTORY_FILE} or metrics.csv is malformed ({exc})") from exc


def load_config(run: Run) -> ForgetConfig:
    return from_dict(ForgetConfig, run.read_json("config.json"))


def forget_run(cfg: ForgetConfig, store: RunStore, hooks: Hooks | None = None, name: str | None = None) -> str:
    """Run structured forgetting for ``cfg`` and store it; returns the run id. Nothing is left half-written."""
    preflight(cfg)  # a refused config creates no run at all
    t0 = time.perf_counter()
    with store.create("forget", to_dict(cfg), name) as writer:
        traj, timings = run_forgetting(cfg, hooks)
        save_trajectory(writer, traj)
        timings["total_s"] = time.perf_counter() - t0
        writer.summary = {"forgot": traj.forgot, "verdict": traj.verdict(), "stage_sizes": traj.stage_sizes,
                          "source_acc": traj.source_acc, "timings": timings, "protocol": describe(cfg),
                          "pretrain_epochs": len(traj.pretrain_history), "stage_steps": traj.stage_steps,
                          "cap_hit": traj.cap_hit, "forgetting": traj.report.to_dict() if traj.report else None,
                          "warm_sizes": traj.warm.sizes if traj.warm else []}
        writer.write_json("summary.json", writer.summary)
    return writer.id


def open_forget_run(store: RunStore, run_id: str) -> tuple[Run, ForgetConfig, Trajectory]:
    run = store.open(run_id)
    if run.manifest.get("kind") != "forget" and not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} holds no forgetting trajectory")
    return run, load_config(run), load_trajectory(run)


def experiment_run(cfg: "ExperimentConfig", store: RunStore, hooks: Hooks | None = None, name: str | None = None,
                   run_id: str | None = None) -> str:
    """Run (or, with ``run_id``, resume) an experiment inside the run store; returns the run id.

    The run folder fills up seed by seed, so a failed or cancelled experiment keeps its finished seeds and a
    later call with the same ``run_id`` picks up from there.
    """
    from .config import to_dict
    from .errors import Cancelled
    from .pipeline import run_experiment

    from .pipeline import preflight_experiment

    preflight_experiment(cfg)  # a refused config creates no run at all
    if run_id is None:
        run_id = store.create_in_place("experiment", to_dict(cfg), name).name
    else:
        info = store.info(run_id)
        if info.kind != "experiment" or info.status == "done":
            raise RunStoreError(f"run {run_id} is a {info.status} {info.kind} run; only an unfinished experiment "
                                "can be resumed")
        store.mark(run_id, "running")
    try:
        results = run_experiment(cfg, store.root / run_id, hooks)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
        store.mark(run_id, status, f"{type(exc).__name__}: {exc}")
        raise
    trajs = results["trajectories"]
    store.finish(run_id, {"preset": cfg.preset, "verdicts": results["verdicts"],
                          "forgot": all(t["forgot"] for t in trajs), "protocol": describe(cfg.source),
                          "forgetting": trajs[0].get("forgetting") if len(trajs) == 1 else None,
                          "forgetting_per_seed": [{"seed": t["seed"], **(t.get("forgetting") or {})} for t in trajs],
                          "total_s": results["timings"]["total_s"]})
    return run_id
