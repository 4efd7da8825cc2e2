"""Background jobs: experiments (and contour grids) run in a detached worker process, never in the caller's.

The dashboard calls :func:`launch`; it creates the run in the store (listed as ``running`` at once), starts
``python -m know_core.jobs run RUN_ID --runs-dir DIR`` in its own session and returns. The worker reports through
files in the run folder, so any process — another browser session, a reloaded page, the CLI — sees the same state:

- ``.progress.json``: the current phase, ``done``/``total`` steps, the latest metrics and every phase seen so far,
  rewritten atomically at most every :data:`WRITE_EVERY_S` seconds (and at each phase change);
- ``.cancel``: created by :func:`cancel`; the worker's ``should_stop`` sees it at the next batch and stops cleanly;
- ``.job.json``: the worker's pid, so a worker that died without a word (killed, out of memory) is found by
  :func:`reconcile` and its run marked failed; ``.worker.log``: its stdout and stderr.

Names start with a dot so the store's manifest leaves them out. Threads are left at the environment's default: the
worker is the one process that trains.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from . import liveness
from .config import to_dict
from .errors import Cancelled, KnowError, RunStoreError
from .experiment import ExperimentConfig
from .fsio import write_json
from .loaders import read_json
from .schemas import check_config
from .store import RunStore
from .train import Hooks, ProgressEvent

PROGRESS, CANCEL, JOB, LOG = ".progress.json", ".cancel", ".job.json", ".worker.log"
WRITE_EVERY_S = 0.5
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _spawn(args: list[str], log: Path, job_file: Path) -> int:
    """Start ``python -m know_core.jobs ARGS`` detached (own session, so a page reload or server restart leaves it
    alone); record its pid; reap it from a thread so a finished worker never lingers as a zombie."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "know_core.jobs", *args], cwd=_PACKAGE_ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    write_json(job_file, liveness.record(proc.pid, args=args))
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def launch(cfg: ExperimentConfig, runs_dir: str | os.PathLike, name: str | None = None) -> str:
    """Validate ``cfg``, create its run (status ``running``) and start a worker on it; returns the run id at once."""
    cfg.validate()
    store = RunStore(runs_dir)
    path = store.create_in_place("experiment", to_dict(cfg), name)
    _spawn(["run", path.name, "--runs-dir", str(store.root)], path / LOG, path / JOB)
    return path.name


def _alive(pid: int, marker: str, rec: dict[str, Any] | None = None) -> bool:
    """Whether ``pid`` is still our worker (not a zombie, not a recycled pid running something else)."""
    return liveness.alive(rec or {"pid": pid}, None if rec and rec.get("proc_start") else marker)


def _job(path: Path) -> dict[str, Any] | None:
    return liveness.read_record(path / JOB)


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
    return {**report, "run_id": run_id, "name": info.name, "status": info.status, "error": info.error,
            "cancel_requested": (path / CANCEL).exists(), "created": info.created, "updated": info.updated}


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
    launch), a forget run by running its config again (see :func:`know_core.runs.resume_run`)."""
    store = RunStore(runs_dir)
    info = store.info(run_id)
    if info.status not in ("failed", "cancelled"):
        raise RunStoreError(f"run {run_id} is {info.status}; only a failed or cancelled run can be resumed")
    if info.kind == "experiment":
        path = store.root / run_id
        (path / CANCEL).unlink(missing_ok=True)
        _spawn(["run", run_id, "--runs-dir", str(store.root)], path / LOG, path / JOB)
        store.mark(run_id, "running")
        return
    logs = store.root / ".logs"
    logs.mkdir(exist_ok=True)
    _spawn(["resume", run_id, "--runs-dir", str(store.root)], logs / f"{run_id}.log", logs / f"{run_id}.job.json")


def expected_phases(cfg: ExperimentConfig) -> int:
    """About how many phases one seed goes through (pre-training, forgetting, oracles, one fine-tune per row)."""
    oracles = len(cfg.scales) if cfg.oracles != "off" else 0
    predicted = [m for m in cfg.method_names if m != "naive"]
    return 2 + 2 * oracles + 2 + 2 * len(predicted) * len(cfg.scales)


class ProgressWriter:
    """Hooks' progress callback that keeps ``.progress.json`` current without writing on every batch."""

    def __init__(self, path: Path, cfg: ExperimentConfig):
        self.path, self.cfg = path, cfg
        self.state: dict[str, Any] = {"phase": "starting", "done": 0, "total": 0, "metrics": {}, "phases": [],
                                      "seeds_total": len(cfg.seeds), "seeds_done": 0, "pid": os.getpid(),
                                      "started": time.time(), "per_seed_phases": expected_phases(cfg)}
        self._last = 0.0
        self.write()

    def _seeds_done(self) -> int:
        return sum((self.path / "seeds" / f"seed-{s}.json").exists() for s in self.cfg.seeds)

    def __call__(self, event: ProgressEvent) -> None:
        phases = self.state["phases"]
        changed = not phases or phases[-1]["phase"] != event.phase or event.done < phases[-1]["done"]
        now = time.time()
        if changed:
            if phases:
                phases[-1]["ended"] = now
            phases.append({"phase": event.phase, "done": 0, "total": event.total, "started": now, "ended": None})
        phases[-1].update(done=event.done, total=event.total)
        self.state.update(phase=event.phase, done=event.done, total=event.total,
                          metrics={k: float(v) for k, v in event.metrics.items()} or self.state["metrics"])
        if changed or now - self._last >= WRITE_EVERY_S:
            self.write()

    def write(self, **final: Any) -> None:
        """Write the report; ``fraction`` estimates the whole job's progress from finished seeds and phases seen."""
        seeds_done = self._seeds_done()
        if seeds_done != self.state["seeds_done"]:
            self._seed_first_phase = len(self.state["phases"])
        phases_this_seed = len(self.state["phases"]) - getattr(self, "_seed_first_phase", 0)
        within = min(phases_this_seed / max(self.state["per_seed_phases"], 1), 0.99)
        fraction = 1.0 if final.get("status") == "done" else \
            min((seeds_done + within) / max(self.state["seeds_total"], 1), 0.99)
        self.state.update(final, updated=time.time(), seeds_done=seeds_done, fraction=fraction)
        write_json(self.path / PROGRESS, self.state)
        self._last = time.time()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, so the run is marked cancelled


def _run(run_id: str, runs_dir: str) -> int:
    """Worker body: run (or resume) the experiment with file-based progress and cancel."""
    from .runs import record_experiment

    store = RunStore(runs_dir)
    path = store.root / run_id
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cfg = check_config(read_json(path, "config.json"), "experiment")
    except KnowError as exc:
        store.mark(run_id, "failed", f"cannot read the run's config.json ({exc})")
        return 2
    writer = ProgressWriter(path, cfg)
    cancel_file = path / CANCEL
    hooks = Hooks(progress=writer, should_stop=cancel_file.exists)
    try:
        record_experiment(cfg, store, hooks, run_id=run_id)
    except (Cancelled, KeyboardInterrupt):
        writer.write(status="cancelled")
        return 130
    except KnowError as exc:
        writer.write(status="failed", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # a bug: keep the traceback in the log, the run is already marked failed
        writer.write(status="failed", error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        if store.info(run_id).status == "running":
            store.mark(run_id, "failed", f"{type(exc).__name__}: {exc}")
        return 1
    writer.write(status="done", phase="done")
    return 0


# Contour grids: an analysis job on a finished run, cached in the run folder (see landscape.contour_grid).

def contour_files(run_dir: Path, key: str) -> tuple[Path, Path, Path]:
    """(result, job file, log) of one contour grid; dot names keep them out of the run's manifest."""
    return run_dir / f".contour-{key}.json", run_dir / f".contour-{key}.job.json", run_dir / f".contour-{key}.log"


def launch_contour(runs_dir: str | os.PathLike, run_id: str, seed: int, layer: str, grid: int) -> str:
    """Compute the loss/accuracy grid over the PCA plane in a worker (unless cached or running); returns its key."""
    from .landscape import contour_key

    store = RunStore(runs_dir)
    store.open(run_id)  # a missing or unfinished run is refused here, with the reason
    key = contour_key(seed, layer, grid)
    result, job_file, log = contour_files(store.root / run_id, key)
    if result.exists() or contour_status(runs_dir, run_id, key)["state"] == "running":
        return key
    log.unlink(missing_ok=True)
    _spawn(["contour", run_id, "--runs-dir", str(store.root), "--seed", str(seed), "--layer", layer,
            "--grid", str(grid)], log, job_file)
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


def _contour(run_id: str, runs_dir: str, seed: int, layer: str, grid: int) -> int:
    from .landscape import contour_grid, contour_key

    store = RunStore(runs_dir)
    out = contour_files(store.root / run_id, contour_key(seed, layer, grid))[0]
    try:
        data = contour_grid(store.open(run_id), seed, layer or None, grid)
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(out, data)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m know_core.jobs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) an experiment run in this process, reporting to its folder")
    contour = sub.add_parser("contour", help="compute a loss/accuracy grid over a finished run's PCA plane")
    again = sub.add_parser("resume", help="resume a failed or cancelled run in this process (see runs resume)")
    for p in (run, contour, again):
        p.add_argument("run_id")
        p.add_argument("--runs-dir", default=os.environ.get("KNOW_RUNS_DIR", "runs"))
    contour.add_argument("--seed", type=int, default=0)
    contour.add_argument("--layer", default="")
    contour.add_argument("--grid", type=int, default=15)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is a write error, not a silent death
    if args.command == "run":
        return _run(args.run_id, args.runs_dir)
    if args.command == "resume":
        from .cli import main as cli_main

        return cli_main(["runs", "resume", args.run_id, "--quiet", "--runs-dir", args.runs_dir])
    return _contour(args.run_id, args.runs_dir, args.seed, args.layer, args.grid)


if __name__ == "__main__":
    sys.exit(main())
