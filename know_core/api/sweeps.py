"""Sweeps for the dashboard: launch one in a background worker, watch its units, cancel or resume it, and read its
table as heatmap data (mean, 95 % interval and the cell's run ids per pair of axis values)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from know_core.api.fmt import num
from know_core.api.headline import _name
from know_core.common.errors import ConfigError
from know_core.experiment.methods import BASELINE
from know_core.experiment.spec import PHASES, preset, resolve_experiment
from know_core.jobs import launch as jobs
from know_core.store.runstore import RunInfo, RunStore

from ..sweep import SweepSpec, cancel_sweep, parse_axis, parse_seeds, read_sweep, sweep_progress
from ..sweep.state import read_table
from ..sweep.summary import METRICS, interval, with_means
from ..sweep.table import FILM_METRICS, sweep_table

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
    table = read_table(store, sweep_id, state) if store.info(sweep_id).status != "running" else None
    if table is None:  # bounded and checked above; absent (or still running): from the finished cells' runs
        table = sweep_table(store, state)
    return with_means(table) if not table.empty else table


def heatmap_data(table: pd.DataFrame, x: str, y: str, metric: str, filters: dict[str, Any] | None = None,
                 axes: list[str] | None = None) -> pd.DataFrame:
    """One row per (x, y): ``mean``, ``lo``/``hi`` (95 % interval over seeds, None under two), ``n`` and the
    ``runs`` (cell run ids) behind it, after keeping only rows whose columns equal ``filters``. A film metric
    (:data:`SWEEP_FILM_METRICS`) counts each seed's film once, whatever the methods on its rows. A heatmap cell pools
    seeds only: one that would average different sweep cells, or several rows of one seed (methods, steps), is
    refused with a :class:`ConfigError` naming the columns (of ``axes`` and method / k / scale) to fix."""
    data = table
    for col, value in (filters or {}).items():
        data = data[data[col].astype(str) == str(value)]
    if metric in FILM_METRICS:  # the film's value repeats on every method's row of its seed: count it once
        data = data.drop_duplicates(["cell", "seed", x, y]).assign(**{metric: lambda d: d[metric].astype(float)})
    rows = []
    for (xv, yv), group in data.groupby([x, y], sort=True, dropna=False):
        if metric in group.columns:
            _seeds_only(group[group[metric].notna()], f"{x} = {xv}, {y} = {yv}", axes or [])
        stats = interval(group[metric]) if metric in group.columns else {"mean": None, "ci95": None, "n": 0}
        ci = stats["ci95"] or (None, None)
        rows.append({x: xv, y: yv, "mean": stats["mean"], "lo": ci[0], "hi": ci[1], "n": stats["n"],
                     "runs": sorted(set(group["run_id"]))})
    return pd.DataFrame(rows)


def _seeds_only(values: pd.DataFrame, where: str, axes: list[str]) -> None:
    """Refuse a heatmap cell whose values come from more than one sweep cell, or more than one row per seed."""
    if values["cell"].nunique() > 1:
        differ = [a for a in axes if a in values.columns and values[a].nunique(dropna=False) > 1]
        raise ConfigError(f"{where} would average {values['cell'].nunique()} different sweep cells"
                          + (f" (they differ in {', '.join(differ)})" if differ else "")
                          + ": choose one value of each as a filter, or make it an axis or the facet")
    if values.duplicated(["cell", "seed"]).any():
        differ = [c for c in ("method", "k", "scale") if c in values.columns and values[c].nunique(dropna=False) > 1]
        raise ConfigError(f"{where} would average several rows of one seed (they differ in "
                          f"{', '.join(differ) or 'other columns'}): choose one value of each as a filter")


def sweep_headline(table: pd.DataFrame, name: str = "This sweep") -> str:
    """One plain sentence for a sweep's table: on how many of its films (cell × seed) the film forgot, and whether any
    predictor got closer than keeping Θ0 to the real larger-data network (the warm oracle) in any row — with the
    nearest one's median — so the Sweeps page answers before its heatmap."""
    if table.empty or "cell" not in table.columns:
        return f"{name} has no finished cell yet."
    films = table.drop_duplicates(["cell", "seed"])
    parts = [f"{name}: the film forgot on {int(films['forgot'].fillna(False).astype(bool).sum())} of {len(films)} "
             f"films ({table['cell'].nunique()} cells × {films['seed'].nunique()} seeds)" if "forgot" in films.columns
             else name]
    rows = with_means(table)
    if "warm_mean" in rows.columns:
        rows = rows[rows["method"].notna() & ~rows["method"].isin([BASELINE, "control", "scratch", "oracle",
                                                                       "oracle-warm", "(film)"])
                    & ~rows["method"].astype(str).str.startswith("shrink:") & rows["warm_mean"].notna()]
        if not rows.empty:
            medians = rows.groupby("method")["warm_mean"].median().sort_values()
            best, closer = medians.index[0], int((rows["warm_mean"] < 1).sum())
            verdict = ("no predictor got closer to the real larger-data network than keeping Θ0 in any of its "
                       f"{len(rows)} rows" if closer == 0 else
                       f"a predictor got closer than keeping Θ0 in {closer} of {len(rows)} rows")
            parts.append(f"{verdict}; {_name(str(best))} was nearest (median {num(medians.iloc[0])}; 1 = as far as Θ0)")
    return "; ".join(parts) + "."


__all__ = ["SWEEP_FILM_METRICS", "SWEEP_METRICS", "SWEEP_PHASES", "heatmap_data", "list_sweeps", "read_sweep_table",
           "resume_sweep",
           "start_sweep", "stop_sweep", "sweep_headline", "sweep_spec", "watch_sweep"]
