"""Background jobs: experiments (and contour grids) run in a detached worker process, never in the caller's.

The dashboard calls :func:`launch`; it creates the run in the store (listed as ``running`` at once), starts
``python -m know_core.jobs.worker run RUN_ID --runs-dir DIR`` (:mod:`.worker`) in its own session and returns. The
worker
reports through files in the run folder, so any process — another browser session, a reloaded page, the CLI — sees
the same state:

- ``.progress.json``: the current phase, ``done``/``total`` steps, the latest metrics and every phase seen so far
  (written by :class:`.progress.ProgressWriter`);
- ``.cancel``: created by :func:`cancel`; the worker's ``should_stop`` sees it at the next batch and stops cleanly;
- ``.job.json``: the worker's pid, so a worker that died without a word (killed, out of memory) is found by
  :func:`reconcile` and its run marked failed; ``.worker.log``: its stdout and stderr.

Names start with a dot so the store's manifest leaves them out. This module launches, watches, cancels and resumes;
it never trains.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from know_core.common import liveness
from know_core.common.errors import KnowError, RunStoreError
from know_core.common.fsio import write_json
from know_core.engine.config import to_dict
from know_core.experiment.landscape import contour_key
from know_core.experiment.pipeline import preflight_experiment
from know_core.experiment.spec import ExperimentConfig
from know_core.jobs.progress import PROGRESS
from know_core.store.loaders import read_json
from know_core.store.runstore import RunStore
from know_core.sweep import create_sweep

if TYPE_CHECKING:
    from know_core.sweep import SweepSpec

CANCEL, JOB, LOG = ".cancel", ".job.json", ".worker.log"
WORKER = "know_core.jobs.worker"  # the module a worker runs; liveness finds it on the command line
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _spawn(args: list[str], log: Path, job_file: Path) -> int:
    """Start ``python -m know_core.jobs.worker ARGS`` detached (own session, so a page reload or server restart leaves
    it
    alone); record its pid; reap it from a thread so a finished worker never lingers as a zombie."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER, *args],
            cwd=_PACKAGE_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_json(job_file, liveness.record(proc.pid, args=args))
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def launch(cfg: ExperimentConfig, runs_dir: str | os.PathLike, name: str | None = None) -> str:
    """Check ``cfg`` once (the form's boundary: :func:`~know_core.experiment.pipeline.preflight_experiment`), create
    its run
    (status ``running``) and start a worker on it; returns the run id at once. The worker validates the config it
    reads back (its own boundary) and the engine trusts it from there."""
    preflight_experiment(cfg)
    store = RunStore(runs_dir)
    path = store.create_in_place("experiment", to_dict(cfg), name)
    _spawn(["run", path.name, "--runs-dir", str(store.root)], path / LOG, path / JOB)
    return path.name


def launch_if_empty(
    cfg: ExperimentConfig, runs_dir: str | os.PathLike, name: str | None = None
) -> tuple[str | None, str]:
    """:func:`launch` unless the runs directory already has a finished run or a running experiment (what
    ``scripts/start.sh`` does with the quick demo, so starting twice never starts two demos). The check and the
    launch hold a lock on ``RUNS/.launch.lock``, so two starts at once launch one job. Returns (the new run id or
    None, a line saying what happened)."""
    store = RunStore(runs_dir)
    with open(store.root / ".launch.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = store.list_runs(status="done")
        if done:
            return None, f"{len(done)} finished run{'s' * (len(done) != 1)} in {store.root}: nothing launched"
        running = store.list_runs(status="running", kind="experiment")
        if running:
            return None, f"{running[0].name!r} ({running[0].id}) is already running: nothing launched"
        return launch(cfg, runs_dir, name), "launched"


def _alive(pid: int, marker: str, rec: dict[str, Any] | None = None) -> bool:
    """Whether ``pid`` is still our worker (not a zombie, not a recycled pid running something else)."""
    return liveness.alive(rec or {"pid": pid}, None if rec and rec.get("proc_start") else marker)


def reconcile(runs_dir: str | os.PathLike) -> list[str]:
    """Mark failed every ``running`` run whose process is gone (a worker or a CLI run); returns their ids.

    The store does this wherever runs are listed (see :meth:`RunStore.list_runs`); this is the explicit call."""
    store = RunStore(runs_dir)
    before = {r.id for r in store.list_runs() if r.status == "failed"}
    return [r.id for r in store.list_runs(status="failed") if r.id not in before]


def progress(runs_dir: str | os.PathLike, run_id: str) -> dict[str, Any]:
    """The run's status (from the index, after :func:`reconcile`) merged with the worker's last progress report."""
    store = RunStore(runs_dir)
    path = store.root / run_id
    info = store.info(run_id)  # a run whose process died is reconciled to failed here
    report = liveness.read_record(path / PROGRESS, 1 << 20) if not path.is_symlink() else None
    if report is None:
        report = {"phase": "starting", "done": 0, "total": 0, "metrics": {}, "phases": []}
    return {
        **report,
        "run_id": run_id,
        "name": info.name,
        "status": info.status,
        "error": info.error,
        "cancel_requested": (path / CANCEL).exists(),
        "created": info.created,
        "updated": info.updated,
    }


def cancel(runs_dir: str | os.PathLike, run_id: str) -> None:
    """Ask the worker to stop; a run whose worker is already gone is marked cancelled at once."""
    store = RunStore(runs_dir)
    info = store.info(run_id)
    if info.status != "running":
        raise RunStoreError(f"run {run_id} is {info.status}; only a running job can be cancelled")
    path = store.root / run_id
    (path / CANCEL).touch()
    if liveness.gone_reason(store.root, run_id, grace_s=0) is not None:
        store.mark(run_id, "cancelled", "cancelled on request (its process was no longer running)")


def resume(runs_dir: str | os.PathLike, run_id: str) -> None:
    """Resume a failed or cancelled run in a worker: an experiment from its finished seeds (with progress, like a
    launch), a forget run by running its config again (see :func:`know_core.jobs.lifecycle.resume_run`)."""
    store = RunStore(runs_dir)
    info = store.info(run_id)
    if info.status not in ("failed", "cancelled"):
        raise RunStoreError(f"run {run_id} is {info.status}; only a failed or cancelled run can be resumed")
    if info.kind == "sweep":
        resume_sweep(runs_dir, run_id)
        return
    if info.kind == "experiment":
        path = store.root / run_id
        (path / CANCEL).unlink(missing_ok=True)
        _spawn(["run", run_id, "--runs-dir", str(store.root)], path / LOG, path / JOB)
        store.mark(run_id, "running")
        return
    logs = store.root / ".logs"
    logs.mkdir(exist_ok=True)
    _spawn(["resume", run_id, "--runs-dir", str(store.root)], logs / f"{run_id}.log", logs / f"{run_id}.job.json")


# Sweeps: the grid is checked and recorded here, a worker runs it on the local executor (see know_core.sweep).


def launch_sweep(
    spec: "SweepSpec", runs_dir: str | os.PathLike, name: str | None = None, workers: int | None = None
) -> str:
    """Check and record the sweep (refused cells named in its ``sweep.json``), start a worker that runs it with the
    local executor, and return its id at once. The worker reports through ``sweep.json``; ``.cancel`` stops it."""
    store = RunStore(runs_dir)
    sweep_id = create_sweep(store, spec, name)
    path = store.root / sweep_id
    args = ["sweep", sweep_id, "--runs-dir", str(store.root)] + (["--workers", str(workers)] if workers else [])
    _spawn(args, path / LOG, path / JOB)
    return sweep_id


def resume_sweep(runs_dir: str | os.PathLike, sweep_id: str) -> None:
    """Resume a failed or cancelled sweep in a new worker (finished units are kept)."""
    store = RunStore(runs_dir)
    info = store.info(sweep_id)
    if info.kind != "sweep" or info.status not in ("failed", "cancelled"):
        raise RunStoreError(
            f"run {sweep_id} is a {info.status} {info.kind} run; only a failed or cancelled sweep can be resumed"
        )
    path = store.root / sweep_id
    _spawn(["sweep", sweep_id, "--runs-dir", str(store.root)], path / LOG, path / JOB)
    store.mark(sweep_id, "running")


# Contour grids: an analysis job on a finished run, cached in the run folder (see landscape.contour_grid).


def contour_files(run_dir: Path, key: str) -> tuple[Path, Path, Path]:
    """(result, job file, log) of one contour grid; dot names keep them out of the run's manifest."""
    return run_dir / f".contour-{key}.json", run_dir / f".contour-{key}.job.json", run_dir / f".contour-{key}.log"


def launch_contour(runs_dir: str | os.PathLike, run_id: str, seed: int, layer: str, grid: int) -> str:
    """Compute the loss/accuracy grid over the PCA plane in a worker (unless cached or running); returns its key."""
    store = RunStore(runs_dir)
    store.open(run_id)  # a missing or unfinished run is refused here, with the reason
    key = contour_key(seed, layer, grid)
    result, job_file, log = contour_files(store.root / run_id, key)
    if result.exists() or contour_status(runs_dir, run_id, key)["state"] == "running":
        return key
    log.unlink(missing_ok=True)
    _spawn(
        ["contour", run_id, "--runs-dir", str(store.root), "--seed", str(seed), "--layer", layer, "--grid", str(grid)],
        log,
        job_file,
    )
    return key


def contour_status(runs_dir: str | os.PathLike, run_id: str, key: str) -> dict[str, Any]:
    """``state``: missing / running / failed (with ``error``) / done (with ``grid``, the cached numbers)."""
    result, job_file, log = contour_files(Path(runs_dir) / run_id, key)
    if result.exists():
        try:
            return {"state": "done", "grid": read_json(result.parent, result.name)}
        except KnowError as exc:
            return {"state": "failed", "error": f"{result.name} is unreadable ({exc})"}
    job = liveness.read_record(job_file)
    if job is None:
        return {"state": "missing"}
    if _alive(job.get("pid", -1), run_id, job):
        return {"state": "running"}
    tail = liveness.log_tail(log, 3).splitlines()
    return {"state": "failed", "error": " ".join(tail) or "the contour worker stopped without a result"}
