"""The worker process: ``python -m know_core.jobs.worker run|contour|resume|sweep|import|predict ID --runs-dir DIR``.

Started detached by :mod:`know_core.jobs.launch`; it runs (or resumes) an experiment with file-based progress and
cancel (its seeds are
units on the inline executor), runs a sweep on the local executor, computes a contour grid, resumes a forget run, or
runs a folder job (RUNS/.imports/KEY: import a film; RUNS/.predicts/KEY: store a film's predictions).
Threads: an experiment takes the cores that are free (:class:`~know_core.common.threads.Adaptive`, looked at again at
phase
boundaries, so a job started beside another CPU-bound process uses one thread instead of fighting it for both cores);
a sweep's pool workers take one thread each. Its log (``.worker.log``) gets one line per phase, never progress bars.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from know_core.common.errors import Cancelled, KnowError
from know_core.common.fsio import write_json
from know_core.common.hooks import Hooks
from know_core.common.threads import Adaptive, apply_threads
from know_core.executors import make_executor
from know_core.experiment.landscape import contour_grid, contour_key
from know_core.experiment.predictrun import check_predict_request, predict_run
from know_core.imports.evalhook import evaluate_film
from know_core.imports.film import read_film, store_film
from know_core.jobs.folderjobs import IMPORTS, PREDICTS, REQUEST, STATUS, UPLOADS, job_folder
from know_core.jobs.launch import CANCEL, contour_files
from know_core.jobs.lifecycle import record_experiment, resume_run
from know_core.jobs.progress import ProgressWriter
from know_core.store.loaders import read_json
from know_core.store.runstore import RunStore
from know_core.store.schemas import check_config
from know_core.sweep import run_sweep


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, so the run is marked cancelled


def _resume(run_id: str, runs_dir: str) -> int:
    """Resume a failed or cancelled forget run (as ``runs resume`` does); a refusal is one ``error:`` line, exit 2."""
    try:
        new_id = resume_run(RunStore(runs_dir, create=False), run_id, Hooks())
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"worker: resumed run {run_id} as {new_id}", file=sys.stderr, flush=True)
    return 0


def _run(run_id: str, runs_dir: str) -> int:
    """Worker body: run (or resume) the experiment with file-based progress and cancel."""
    store = RunStore(runs_dir)
    path = store.root / run_id
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cfg = check_config(read_json(path, "config.json"), "experiment")
    except KnowError as exc:
        store.mark(run_id, "failed", f"cannot read the run's config.json ({exc})")
        return 2
    try:
        threads = Adaptive()
    except KnowError as exc:  # a malformed KNOW_THREADS / OMP_NUM_THREADS
        store.mark(run_id, "failed", str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"worker: run {run_id} ({cfg.preset} preset, {len(cfg.seeds)} seed{'s' * (len(cfg.seeds) != 1)}), "
        f"{threads.threads} thread{'s' * (threads.threads != 1)} to start with",
        file=sys.stderr,
        flush=True,
    )
    writer = ProgressWriter(path, cfg, log=sys.stderr, threads=threads)
    cancel_file = path / CANCEL
    hooks = Hooks(progress=writer, should_stop=cancel_file.exists)
    try:
        record_experiment(cfg, store, hooks, run_id=run_id)
    except (Cancelled, KeyboardInterrupt):
        writer.write(status="cancelled")
        print("worker: cancelled", file=sys.stderr, flush=True)
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
    print(f"worker: done in {time.time() - writer.state['started']:.0f} s", file=sys.stderr, flush=True)
    return 0


def _contour(run_id: str, runs_dir: str, seed: int, layer: str, grid: int) -> int:
    store = RunStore(runs_dir)
    out = contour_files(store.root / run_id, contour_key(seed, layer, grid))[0]
    try:
        data = contour_grid(store.open(run_id), seed, layer or None, grid)
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(out, data)
    return 0


def _sweep(sweep_id: str, runs_dir: str, workers: int | None) -> int:
    """Run (or resume) a sweep with the local executor; its state is in ``sweep.json``, its cancel file ``.cancel``."""
    store = RunStore(runs_dir)
    signal.signal(signal.SIGTERM, _interrupt)
    executor = make_executor("local", workers)
    try:
        counts = run_sweep(store, sweep_id, executor)
    except (Cancelled, KeyboardInterrupt):
        return 130
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if store.info(sweep_id).status == "running":
            store.mark(sweep_id, "failed", str(exc))
        return 2
    finally:
        executor.close()
    return 1 if counts["failed"] else 0


class _JobStatus:
    """``status.json`` of a folder job (an import, a prediction), kept current (at most twice a second) from the
    hooks' progress."""

    def __init__(self, folder):
        self.folder, self.last, self.phase = folder, 0.0, ""

    def __call__(self, event) -> None:
        now = time.monotonic()
        if event.phase != self.phase or event.done == event.total or now - self.last > 0.5:
            if event.phase != self.phase:
                print(f"worker: {event.phase}", file=sys.stderr, flush=True)
            self.phase, self.last = event.phase, now
            self.write(state="running", phase=event.phase, done=event.done, total=event.total)

    def write(self, **status: Any) -> None:
        write_json(self.folder / STATUS, status)


def _folder_job(jobs: str, key: str, runs_dir: str, body: Callable[[RunStore, dict, Hooks], dict[str, Any]]) -> int:
    """Run a folder job: ``body(store, request, hooks)`` does the work and returns what ``status.json`` says when it
    is done; a cancel, a refusal (one ``error:`` line) or a bug (its traceback in the log) is written there instead."""
    store = RunStore(runs_dir)
    folder = job_folder(store.root, jobs, key)
    signal.signal(signal.SIGTERM, _interrupt)
    status = _JobStatus(folder)
    hooks = Hooks(progress=status, should_stop=(folder / CANCEL).exists)
    try:
        hooks.check()  # cancelled before it started
        result = body(store, read_json(folder, REQUEST), hooks)
    except (Cancelled, KeyboardInterrupt):
        status.write(state="cancelled", error="cancelled on request; nothing stored")
        print("worker: cancelled", file=sys.stderr, flush=True)
        return 130
    except KnowError as exc:
        status.write(state="failed", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # a bug: keep the traceback in the log
        status.write(state="failed", error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    status.write(state="done", phase="done", done=1, total=1, **result)
    return 0


def _import(store: RunStore, req: dict[str, Any], hooks: Hooks) -> dict[str, Any]:
    """Import the film of ``request.json``: read and check every checkpoint, run the --eval hook, store the run."""
    try:
        overrides = [tuple(p) for p in req.get("groups") or []] or None
        film = read_film(req["paths"], req["kind"], req.get("order"), bool(req.get("reverse")), req.get("r", 0.5),
                         overrides, hooks, check_values=bool(req.get("eval")))  # else checked while stored
        metrics = evaluate_film(film.states, req["eval"], req.get("eval_timeout", 60.0), hooks) \
            if req.get("eval") else None
        hooks.check()
        hooks.report("store the run", 0, 1)
        run_id = store_film(store, film, req.get("name"), overrides, metrics, req.get("eval"), hooks)
    finally:
        upload = req.get("cleanup")
        uploads = (store.root / UPLOADS).resolve()
        if isinstance(upload, str) and Path(upload).resolve().parent == uploads:
            shutil.rmtree(upload, ignore_errors=True)  # an extracted upload, ours to remove once read
    print(f"worker: stored run {run_id}", file=sys.stderr, flush=True)
    return {"run_id": run_id}


def _predict(store: RunStore, req: dict[str, Any], hooks: Hooks) -> dict[str, Any]:
    """Store the predictions ``request.json`` asks for in its run (checked again here: the worker's own boundary)."""
    run_id, method, steps = req["run_id"], req["method"], req["steps"]
    predictor = check_predict_request(store, run_id, method, steps, bool(req.get("drift_correct")),
                                      req.get("options") or {})
    stored = predict_run(store, run_id, method, predictor, steps, bool(req.get("reset_norm")),
                         bool(req.get("include_embed")), bool(req.get("drift_correct")), hooks)
    print(f"worker: {stored.lines()[0]}", file=sys.stderr, flush=True)
    return {"run_id": run_id, "method": stored.method, "file": stored.name, "scales": stored.scales,
            "lines": stored.lines()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m know_core.jobs.worker", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) an experiment run in this process, reporting to its folder")
    contour = sub.add_parser("contour", help="compute a loss/accuracy grid over a finished run's PCA plane")
    again = sub.add_parser("resume", help="resume a failed or cancelled run in this process (see runs resume)")
    sweep = sub.add_parser("sweep", help="run (or resume) a sweep with the local executor")
    imp = sub.add_parser("import", help="import the film of an import job (RUNS/.imports/KEY/request.json)")
    pred = sub.add_parser("predict", help="store the predictions of a predict job (RUNS/.predicts/KEY/request.json)")
    sweep.add_argument("--workers", type=int, default=None)
    for p in (run, contour, again, sweep, imp, pred):
        p.add_argument("run_id")
        p.add_argument("--runs-dir", default=os.environ.get("KNOW_RUNS_DIR", "runs"))
    contour.add_argument("--seed", type=int, default=0)
    contour.add_argument("--layer", default="")
    contour.add_argument("--grid", type=int, default=15)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is a write error, not a silent death
    if args.command in ("contour", "resume", "import", "predict"):
        apply_threads()  # the free cores, once (an experiment run re-checks at every phase)
    if args.command == "run":
        return _run(args.run_id, args.runs_dir)
    if args.command == "sweep":
        return _sweep(args.run_id, args.runs_dir, args.workers)
    if args.command == "resume":
        return _resume(args.run_id, args.runs_dir)
    if args.command == "import":
        return _folder_job(IMPORTS, args.run_id, args.runs_dir, _import)
    if args.command == "predict":
        return _folder_job(PREDICTS, args.run_id, args.runs_dir, _predict)
    return _contour(args.run_id, args.runs_dir, args.seed, args.layer, args.grid)


if __name__ == "__main__":
    sys.exit(main())
