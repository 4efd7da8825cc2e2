"""Forgetting films in the run store: a recorded trajectory (and its warm and control films) written into a run
folder and read back bit-identically."""

from __future__ import annotations

from know_core.common.errors import RunStoreError
from know_core.engine.config import ForgetConfig, from_dict
from know_core.engine.filmcontext import Continuation
from know_core.engine.forgetting import Trajectory
from know_core.engine.measure import ForgettingReport
from know_core.store.kinds import register_run_kind
from know_core.store.legacy import film_counts, read
from know_core.store.loaders import LIMITS, Damaged, inside, safetensors_header
from know_core.store.runstore import Run, RunStore, RunWriter
from know_core.store.schemas import check_groups, check_states
from know_core.store.snapshots import pack

TRAJECTORY_FILE = "trajectory.safetensors"
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


def film_length(run: Run, key: str) -> int:
    """How many stages the warm oracles (``key`` "warm") or the control film ("control") of ``run`` hold, 0 where
    none was recorded, read from the film file's header alone: no tensor is loaded and the file's checksum is not
    read (whoever loads the film checks both)."""
    name = FILM_FILES[key]
    if not run.has(name):
        return 0
    try:
        path = inside(run.path, name, LIMITS["tensors"])
        metadata = safetensors_header(path, name, path.stat().st_size)["metadata"]
        return film_counts(metadata, name, key).get(key, 0)
    except Damaged as exc:
        raise exc.for_run(run.id) from None


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


def open_forget_run(store: RunStore, run_id: str) -> tuple[Run, ForgetConfig, Trajectory]:
    run = store.open(run_id)
    if run.kind != "forget" or not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} holds no forgetting trajectory")
    return run, load_config(run), load_trajectory(run)


def _forget_config(data) -> ForgetConfig:
    cfg = from_dict(ForgetConfig, data)
    cfg.validate()
    return cfg


register_run_kind("forget", _forget_config, "a forgetting film: Θ0 … Θ_{S−1}, with its warm and control films")
