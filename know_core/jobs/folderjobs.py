"""Background jobs on a folder of their own, RUNS/<jobs>/KEY/ (the experiment and sweep jobs of
:mod:`know_core.jobs.launch` live in their run's folder instead): importing a film (``.imports``) and storing a
stored film's predictions (``.predicts``). Each folder holds request.json (what to do), status.json (state, phase,
done/total, then the result or an error), and ``.job.json``, ``.worker.log`` and ``.cancel`` as a run's job does;
the worker (:mod:`know_core.jobs.worker`) reads the request and writes the status."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from know_core.common import liveness
from know_core.common.errors import ConfigError
from know_core.common.fsio import write_json
from know_core.experiment.predictrun import check_predict_request
from know_core.jobs import launch
from know_core.jobs.launch import CANCEL, JOB, LOG
from know_core.store.runstore import RunStore

IMPORTS, PREDICTS, REQUEST, STATUS = ".imports", ".predicts", "request.json", "status.json"
UPLOADS = ".uploads"  # RUNS/.uploads/TOKEN/: an uploaded zip's extracted film, removed by the import job that read it
_JOB_KEY = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_WHAT = {IMPORTS: "import", PREDICTS: "predict"}  # the folder of each job kind -> the worker's command


def job_folder(runs_dir: str | os.PathLike, jobs: str, key: str) -> Path:
    """RUNS/<jobs>/KEY/ of a folder job (``jobs``: IMPORTS or PREDICTS); a key that is not one is refused."""
    if not isinstance(key, str) or not _JOB_KEY.match(key):
        raise ConfigError(f"{_WHAT[jobs]} job {str(key)[:40]!r}: not a {_WHAT[jobs]} job's key")
    return Path(runs_dir) / jobs / key


def import_folder(runs_dir: str | os.PathLike, key: str) -> Path:
    return job_folder(runs_dir, IMPORTS, key)


def launch_folder_job(runs_dir: str | os.PathLike, jobs: str, request: dict[str, Any]) -> str:
    """Record ``request`` (checked by the caller) in a new job folder and start its worker; returns the job's key."""
    store = RunStore(runs_dir)
    store.require_writable()
    key = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    folder = job_folder(store.root, jobs, key)
    folder.mkdir(parents=True)
    write_json(folder / REQUEST, request)
    write_json(folder / STATUS, {"state": "running", "phase": "starting", "done": 0, "total": 0})
    launch._spawn([_WHAT[jobs], key, "--runs-dir", str(store.root)], folder / LOG, folder / JOB)
    return key


def folder_job_status(runs_dir: str | os.PathLike, jobs: str, key: str) -> dict[str, Any]:
    """``state``: running (with ``phase``, ``done``, ``total``) / done (with the job's result) / failed (with
    ``error``) / cancelled / missing; a worker that died without a word is failed with its log's last line."""
    folder = job_folder(runs_dir, jobs, key)
    status = liveness.read_record(folder / STATUS)
    if status is None:
        return {"state": "missing", "key": key}
    if status.get("state") == "running":
        job = liveness.read_record(folder / JOB)
        if job is not None and not launch._alive(job.get("pid", -1), key, job):
            status = liveness.read_record(folder / STATUS) or status  # it may have finished just now
            if status.get("state") == "running":
                tail = liveness.log_tail(folder / LOG, 1).strip()
                status = {"state": "failed", "error": tail or f"the {_WHAT[jobs]} worker stopped without a word"}
    return {**status, "key": key, "cancel_requested": (folder / CANCEL).exists()}


def launch_import(runs_dir: str | os.PathLike, request: dict[str, Any]) -> str:
    """Start a worker that imports the film ``request`` describes (checked by the caller); returns the job's key."""
    return launch_folder_job(runs_dir, IMPORTS, request)


def import_status(runs_dir: str | os.PathLike, key: str) -> dict[str, Any]:
    """See :func:`folder_job_status`; a done import has ``run_id``."""
    return folder_job_status(runs_dir, IMPORTS, key)


def cancel_import(runs_dir: str | os.PathLike, key: str) -> None:
    (job_folder(runs_dir, IMPORTS, key) / CANCEL).touch()


def launch_predict(runs_dir: str | os.PathLike, run_id: str, method: str, steps: int = 3, reset_norm: bool = False,
                   include_embed: bool = False, drift_correct: bool = False,
                   options: dict[str, Any] | None = None) -> str:
    """Check the request (one line and no job on a refusal: see
    :func:`~know_core.experiment.predictrun.check_predict_request`, which also builds the predictor with
    ``options``, option name -> value) and start a worker that stores ``method``'s predictions in the run; returns
    the job's key. request.json keeps the options given (None values, the registry's defaults, left out)."""
    check_predict_request(RunStore(runs_dir, create=False), run_id, method, steps, drift_correct, options)
    request = {"run_id": run_id, "method": method, "steps": steps, "reset_norm": bool(reset_norm),
               "include_embed": bool(include_embed), "drift_correct": bool(drift_correct),
               "options": {k: v for k, v in (options or {}).items() if v is not None}}
    return launch_folder_job(runs_dir, PREDICTS, request)


def predict_status(runs_dir: str | os.PathLike, key: str) -> dict[str, Any]:
    """See :func:`folder_job_status`; a done prediction has ``run_id``, ``method``, ``file``, ``scales``, ``lines``."""
    return folder_job_status(runs_dir, PREDICTS, key)


def cancel_predict(runs_dir: str | os.PathLike, key: str) -> None:
    (job_folder(runs_dir, PREDICTS, key) / CANCEL).touch()
