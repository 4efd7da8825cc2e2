"""Sweeps for the dashboard: launch one in a background worker, watch its units, cancel or resume it, and read its
table as heatmap data (mean, 95 % interval and the cell's run ids per pair of axis values)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from .. import jobs
from ..experiment import PHASES, preset, resolve_experiment
from ..store import RunInfo, RunStore
from ..sweep import SweepSpec, cancel_sweep, parse_axis, parse_seeds, read_sweep, sweep_progress
from ..sweep.summary import METRICS, interval, with_means
from ..sweep.table import FILM_METRICS, TABLE_PARQUET, sweep_table

Root = str | os.PathLike
SWEEP_METRICS = METRICS
SWEEP_PHASES = PHASES
SWEEP_FILM_METRICS = FILM_METRICS


def sweep_spec(preset_name: str, axes: list[str], seeds: str, what: list[str],
               overrides: dict[str, Any] | None = None, yes: bool = False) -> SweepSpec:
    """The checked spec of a sweep from the form's text (``axes`` like ``source.r=0.33,0.5``)."""
    base = resolve_experiment(preset(preset_name), None, overrides or {})
    spec = SweepSpec(base, [parse_axis(a) for a in axes if a.strip()], parse_seeds(seeds), list(what))
    spec.check_size(yes)
    return spec


def start_sweep(spec: SweepSpec, root: Root, name: str | None = None, workers: int | None = None) -> str:
    """Record the sweep and run it in a background worker; returns its id."""
    return jobs.launch_sweep(spec, root, name, workers)


def list_sweeps(root: Root) -> list[RunInfo]:
    return RunStore(root).list_runs(kind="sweep")


def watch_sweep(root: Root, sweep_id: str) -> dict[str, Any]:
    """Status, unit counts (done / running / failed …), cells (label, run id, notes, refusal) and the spec."""
    store = RunStore(root)
    info = store.info(sweep_id)
    state = read_sweep(store, sweep_id)
    return {"id": sweep_id, "name": state["name"], "status": info.status, "error": info.error,
            "counts": sweep_progress(state), "cells": state["cells"], "spec": state["spec"],
            "axes": [k for k, _ in state["spec"]["axes"]], "runs": state.get("runs", []),
            "failed_units": {k: u["error"] for k, u in state["units"].items() if u["status"] == "failed"}}


def stop_sweep(root: Root, sweep_id: str) -> None:
    cancel_sweep(RunStore(root), sweep_id)


def resume_sweep(root: Root, sweep_id: str) -> None:
    jobs.resume_sweep(root, sweep_id)


def read_sweep_table(root: Root, sweep_id: str) -> pd.DataFrame:
    """The sweep's table: the written ``results.parquet`` once the sweep stopped, else the cells finished so far."""
    store = RunStore(root)
    state = read_sweep(store, sweep_id)
    path = store.root / sweep_id / TABLE_PARQUET
    if store.info(sweep_id).status != "running" and path.is_file():
        table = pd.read_parquet(path)
    else:
        table = sweep_table(store, state)
    return with_means(table) if not table.empty else table


def heatmap_data(table: pd.DataFrame, x: str, y: str, metric: str, filters: dict[str, Any] | None = None
                 ) -> pd.DataFrame:
    """One row per (x, y): ``mean``, ``lo``/``hi`` (95 % interval over seeds, None under two), ``n`` and the
    ``runs`` (cell run ids) behind it, after keeping only rows whose columns equal ``filters``. A film metric
    (:data:`SWEEP_FILM_METRICS`) counts each seed's film once, whatever the methods on its rows."""
    data = table
    for col, value in (filters or {}).items():
        data = data[data[col].astype(str) == str(value)]
    if metric in FILM_METRICS:  # the film's value repeats on every method's row of its seed: count it once
        data = data.drop_duplicates(["cell", "seed", x, y]).assign(**{metric: lambda d: d[metric].astype(float)})
    rows = []
    for (xv, yv), group in data.groupby([x, y], sort=True, dropna=False):
        stats = interval(group[metric]) if metric in group.columns else {"mean": None, "ci95": None, "n": 0}
        ci = stats["ci95"] or (None, None)
        rows.append({x: xv, y: yv, "mean": stats["mean"], "lo": ci[0], "hi": ci[1], "n": stats["n"],
                     "runs": sorted(set(group["run_id"]))})
    return pd.DataFrame(rows)


__all__ = ["SWEEP_FILM_METRICS", "SWEEP_METRICS", "SWEEP_PHASES", "heatmap_data", "list_sweeps", "read_sweep_table",
           "resume_sweep",
           "start_sweep", "stop_sweep", "sweep_spec", "watch_sweep"]
