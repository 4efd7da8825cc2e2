"""A sweep's tidy table: one row per cell × seed × method × scale, with every metric the experiment reports.

Columns: the sweep's axes; ``cell``, ``run_id``, ``seed``, ``method``, ``scale`` and ``k`` (steps back, so cells with
different r line up); the forgetting verdict of the seed's film (``forgot``, ``forgot_acc``, ``p_value``, ``strength``,
``smoothness``, ``pattern``, ``kind``); ``target_acc`` and ``source_acc`` after fine-tuning with their differences to
naive (``vs_naive``) and to the method's shrinkage control (``vs_shrink``); ``backtest_<group>`` (held-out backtest
error, relative to keeping Θ) and ``warm_<group>`` / ``warm_cos_<group>`` (error and cosine against the warm oracle);
and the cost columns ``cost_<phase>_s`` (wall seconds per phase of the seed, ``cpu_s`` where recorded). Written as
``results.parquet`` and ``results.csv``, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from know_core.common.fsio import atomic_write
from know_core.engine.config import steps_of_scale
from know_core.store.loaders import Damaged, read_json
from know_core.store.runstore import RunStore

TABLE_PARQUET, TABLE_CSV = "results.parquet", "results.csv"
_FORGET_KEYS = ("forgot", "forgot_acc", "p_value", "strength", "smoothness", "pattern", "kind")
FILM_METRICS = ("forgot", "forgot_acc", "p_value", "strength", "smoothness")  # one value per seed's film


def cell_rows(results: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy rows of one cell's ``results.json``; ``base`` (axes, cell, run id) is copied into each."""
    r = results["config"]["source"]["r"]
    by_seed: dict[int, dict[tuple[str, float | None], dict[str, Any]]] = {}

    def row(seed: int, method: str, scale: float | None) -> dict[str, Any]:
        rows = by_seed.setdefault(seed, {})
        if (method, scale) not in rows:
            k = None if scale is None or scale <= 1 else steps_of_scale(scale, r)
            rows[(method, scale)] = {**base, "seed": seed, "method": method, "scale": scale, "k": k}
        return rows[(method, scale)]

    for d in results.get("rows", []):
        if d.get("valid", True):
            row(d["seed"], d["method"], d["scale"]).update(target_acc=d.get("target_acc"),
                                                           source_acc=d.get("source_acc"))
    for d in results.get("retrodiction", []):
        if d.get("layer", "") == "":
            entry = row(d["seed"], d["method"], d["scale"])
            entry[f"warm_{d['group']}"] = d.get("rel_error")
            entry[f"warm_cos_{d['group']}"] = d.get("cosine")
    _differences(by_seed)
    backtest = {(d["seed"], d["method"], d["group"]): d.get("rel_error") for d in results.get("backtest", [])
                if "group" in d}
    for seed, method, _ in backtest:  # a method backtested but neither fine-tuned nor scored: a row of its own
        if not any(m == method for m, _ in by_seed.get(seed, {})):
            row(seed, method, None)
    forgetting = {t["seed"]: t.get("forgetting") or {"forgot": t.get("forgot")} for t in results["trajectories"]}
    timings = {t["seed"]: t for t in results.get("timings", {}).get("per_seed", [])}
    out = []
    for seed in sorted(forgetting):
        rows = by_seed.get(seed) or {("(film)", None): row(seed, "(film)", None)}
        for entry in rows.values():
            for (s, m, g), err in backtest.items():
                if s == seed and m == entry["method"]:
                    entry[f"backtest_{g}"] = err
            entry.update({k: forgetting[seed].get(k) for k in _FORGET_KEYS})
            entry.update({f"cost_{k}": v for k, v in timings.get(seed, {}).items()
                          if k != "seed" and isinstance(v, (int, float))})
            out.append(entry)
    return out


def _differences(by_seed: dict[int, dict]) -> None:
    for rows in by_seed.values():
        naive = rows.get(("naive", 1.0), {}).get("target_acc")
        for (method, scale), entry in rows.items():
            acc = entry.get("target_acc")
            if acc is None:
                continue
            if naive is not None and method != "naive":
                entry["vs_naive"] = acc - naive
            shrink = rows.get((f"shrink:{method}", scale), {}).get("target_acc")
            if shrink is not None:
                entry["vs_shrink"] = acc - shrink


def sweep_table(store: RunStore, state: dict[str, Any]) -> pd.DataFrame:
    """The table over every sealed cell of ``state`` (cells still running or failed are left out)."""
    rows = []
    for entry in state["cells"]:
        run_id = entry.get("run_id")
        if not run_id or store.info(run_id).status != "done":
            continue
        try:
            results = read_json(store.root / run_id, "results.json")
        except Damaged as exc:
            raise exc.for_run(run_id) from None
        base = {**{k: _scalar(v) for k, v in entry["values"].items()}, "cell": entry["key"], "run_id": run_id}
        rows += cell_rows(results, base)
    return pd.DataFrame(rows)


def write_table(store: RunStore, state: dict[str, Any], folder: Path) -> pd.DataFrame:
    """Write ``results.parquet`` and ``results.csv`` into the sweep folder (each atomically)."""
    table = sweep_table(store, state)
    with atomic_write(folder / TABLE_PARQUET) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_write(folder / TABLE_CSV) as tmp:
        table.to_csv(tmp, index=False)
    return table


def _scalar(v: Any) -> Any:
    return " ".join(map(str, v)) if isinstance(v, list) else v
