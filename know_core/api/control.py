"""Starting, watching, cancelling, resuming, renaming, deleting and listing runs, and the landscape jobs.

Runs go to background workers (:mod:`know_core.jobs.launch`); the functions here look the job module up at call time,
so one monkeypatch of ``know_core.jobs.launch`` reaches every caller.
"""

from __future__ import annotations

import os
from typing import Any

from know_core.experiment.spec import ExperimentConfig, preset
from know_core.jobs import launch as jobs
from know_core.store.runstore import RunInfo, RunStore

Root = str | os.PathLike


def start(cfg: ExperimentConfig, root: Root, name: str | None = None) -> str:
    """Launch an experiment in a background worker; returns its run id."""
    return jobs.launch(cfg, root, name)


def start_preset(preset_name: str, root: Root, name: str | None = None) -> str:
    return start(preset(preset_name), root, name)


def watch(root: Root, run_id: str) -> dict[str, Any]:
    """The live progress report of a run (stage, seed, log tail, state)."""
    return jobs.progress(root, run_id)


def reconcile(root: Root) -> list[str]:
    """Mark runs whose worker has died as failed; returns their ids."""
    return jobs.reconcile(root)


def cancel(root: Root, run_id: str) -> None:
    jobs.cancel(root, run_id)


def resume(root: Root, run_id: str) -> None:
    """Continue a failed or cancelled run in a new worker (an experiment from its finished seeds)."""
    jobs.resume(root, run_id)


def list_runs(store: RunStore, **filters: str) -> list[RunInfo]:
    return store.list_runs(**filters)


def rename(store: RunStore, run_id: str, name: str) -> None:
    store.rename(run_id, name)


def delete(store: RunStore, run_id: str, force: bool = False) -> None:
    """Remove a run that is not running, with all its files (``force``: also one listed as running whose owner is
    on another host or untrustworthy; never one whose process lives on this host)."""
    store.delete(run_id, force=force)


def start_contour(root: Root, run_id: str, seed: int, layer: str | None, grid: int) -> str:
    """Compute the loss/accuracy landscape over a seed's PCA plane in a background worker."""
    return jobs.launch_contour(root, run_id, seed, layer or "", grid)


def contour_status(root: Root, run_id: str, key: str) -> dict[str, Any]:
    return jobs.contour_status(root, run_id, key)


__all__ = ["cancel", "contour_status", "delete", "list_runs", "reconcile", "rename", "resume", "start",
           "start_contour", "start_preset", "watch"]
