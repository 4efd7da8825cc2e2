"""Collect forgetting trajectories into a folder: one safetensors file per finished job, resumable, in parallel.

A job's file is ``<job id>.safetensors`` (the film, and the warm oracles and control film where the job records them;
format in ``trajfile.py``) and is written atomically, so its presence means "finished": an interrupted collection is
restarted with the same command and only the missing jobs run. A file that exists but cannot be read is redone with a
warning. Jobs are units of work on an executor (:mod:`know_core.executors`): by default worker processes with one
OpenMP thread each, or Ray tasks; ``run_job`` alone is what a cluster task calls.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from safetensors import safe_open

from know_core.common.fsio import write_json
from know_core.common.hooks import Hooks
from know_core.engine.forgetting import run_forgetting
from know_core.executors import Unit, make_executor
from know_core.executors.local import single_thread_pool as pool
from know_core.executors.tasks import task
from know_core.metatrain.plan import Job

from ..models import GROUPS
from ..predictors.known_net import STAGES as WINDOW
from .trajfile import (  # noqa: F401 (re-export)
    FILE_FORMAT,
    CorruptTrajectory,
    read_metadata,
    read_trajectory_file,
    save_trajectory_file,
    theta0_prefix,
)

if TYPE_CHECKING:
    from ..executors import Executor

SUMMARY_FILE = "collection.json"
WARM_STEPS = 2  # warm oracles Θ_{−1}, Θ_{−2} per job, where the pool holds the supersets (and the job records them)


def trajectory_path(out: Path, job: Job) -> Path:
    return Path(out) / f"{job.id}.safetensors"


def is_done(path: Path) -> bool:
    """True when ``path`` is a readable finished trajectory; a damaged one is reported and will be redone."""
    if not path.exists():
        return False
    try:
        read_metadata(path)
        return True
    except CorruptTrajectory as exc:
        warnings.warn(f"{exc}; redoing this job", stacklevel=2)
        return False


def run_job(job: Job, out: str | Path, hooks: Hooks | None = None) -> dict[str, Any]:
    """Run one job and store its trajectory (skipped if already there). Returns a short record of what happened."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = trajectory_path(out, job)
    if is_done(path):
        return {"id": job.id, "status": "skipped"}
    t0 = time.perf_counter()
    traj, timings = run_forgetting(job.forget_config(), hooks, warm_steps=WARM_STEPS)
    timings["total_s"] = time.perf_counter() - t0
    save_trajectory_file(path, job, traj, timings)
    return {"id": job.id, "status": "done", "seconds": timings["total_s"], "forgot": traj.forgot,
            "warm": len(traj.warm.states) if traj.warm else 0}


@contextlib.contextmanager
def single_thread_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Spawned worker processes with one OpenMP thread each (meta-training's per-group pool)."""
    with pool(workers) as p:
        yield p


def collect(jobs: list[Job], out: str | Path, workers: int = 2,
            progress: Callable[[int, int, dict[str, Any]], None] | None = None,
            executor: "Executor | None" = None) -> dict[str, Any]:
    """Run every unfinished job of ``jobs`` into ``out`` as units of work on ``executor`` (default: the local
    process pool with ``workers`` processes, inline for one); returns the folder's summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    units = [Unit(job.id, "collect-job", json.loads(job.to_json()), str(out)) for job in jobs]
    own = executor is None
    executor = executor or make_executor("inline" if workers <= 1 else "local", None if workers <= 1 else workers)
    records: list[dict[str, Any]] = []
    report = progress or (lambda done, total, rec: None)
    skipped = 0

    def listen(key: str, status: str, outcome) -> None:
        nonlocal skipped
        if status == "skipped":
            skipped += 1
        elif outcome is not None:
            records.append({"id": key, "status": outcome.status, "error": outcome.error, **outcome.record})
            report(len(records), len(units) - skipped, records[-1])

    try:
        executor.execute(units, listen)
    finally:
        if own:
            executor.close()
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed:
        print(f"warning: job {r['id']} failed: {r['error']}", file=sys.stderr)
    summary = summarise(out)
    history = summary.get("history", [])
    history.append({"jobs": len(jobs), "ran": sum(r["status"] == "done" for r in records),
                    "already_done": skipped, "failed": len(failed), "workers": executor.workers,
                    "executor": executor.name, "seconds": round(time.perf_counter() - t0, 1)})
    summary["history"] = history
    write_json(out / SUMMARY_FILE, summary)
    return summary


def summarise(out: str | Path) -> dict[str, Any]:
    """Trajectories, windows (5-stage windows with a next stage, all groups) and bytes in a collection folder."""
    out = Path(out)
    trajectories, windows, size, forgot, broken, job_s = 0, 0, 0, 0, [], 0.0
    budgets: dict[str, int] = {}
    with_warm, with_control = 0, 0
    for path in sorted(out.glob("*.safetensors")):
        try:
            meta = read_metadata(path)
        except CorruptTrajectory as exc:
            broken.append(str(exc))
            continue
        head = theta0_prefix(meta)
        with safe_open(str(path), framework="pt") as f:
            n_weights = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys()  # noqa: SIM118
                            if k.startswith(head) and meta["groups"].get(k[len(head):]) in GROUPS)
        trajectories += 1
        windows += n_weights * max(0, meta["stages"] - WINDOW)
        size += path.stat().st_size
        forgot += bool(meta["forgot"])
        job_s += float(meta["timings"].get("total_s", 0.0))
        kind = meta["budget"].split(":")[0]
        budgets[kind] = budgets.get(kind, 0) + 1
        with_warm += meta["n_warm"] > 0
        with_control += meta["n_control"] > 0
    previous = {}
    if (out / SUMMARY_FILE).is_file():
        try:
            previous = json.loads((out / SUMMARY_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
    # job_seconds: the sum of every stored job's own run time, which survives interrupted and resumed collections
    return {"trajectories": trajectories, "windows": windows, "bytes": size, "forgot": forgot,
            "job_seconds": round(job_s, 1), "budgets": budgets, "with_warm": with_warm, "with_control": with_control,
            "broken": broken, "history": previous.get("history", [])}


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# The task kind an executor runs for one forgetting job of the meta-dataset.
def _job(payload: dict):
    job = Job(payload["id"], payload.get("grid", "custom"), payload["config"])
    job.forget_config().validate()
    return job


def _job_done(payload: dict, out: str) -> bool:
    return is_done(trajectory_path(Path(out), _job(payload)))


@task("collect-job", done=_job_done)
def collect_job(payload: dict, out: str, hooks: Hooks) -> dict:
    """One forgetting run of the meta-dataset into ``out/<job id>.safetensors``."""
    return run_job(_job(payload), out, hooks)
