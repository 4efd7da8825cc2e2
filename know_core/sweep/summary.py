"""A sweep's table reduced to what a reader asks first: per cell, did the film forget, and does each method beat
keeping Θ0 — downstream (paired difference to naive) and against the warm oracle — with 95 % intervals over seeds."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from know_core.experiment.methods import BASELINE
from know_core.experiment.stats import t_interval

METRICS = {
    "vs_naive": "target accuracy − naive's (paired over seeds)",
    "vs_shrink": "target accuracy − its shrinkage control's",
    "target_acc": "target test accuracy after fine-tuning",
    "warm_mean": "error against the warm oracle, mean over groups (1.0 = as far as keeping Θ0)",
    "backtest_mean": "held-out backtest error, mean over groups (1.0 = keeping Θ)",
    "strength": "forgetting strength of the film",
    "forgot": "share of seeds whose film forgot (paired test on the source loss)",
}


def with_means(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus ``warm_mean`` and ``backtest_mean`` (the mean of the per-group columns, where present)."""
    table = table.copy()
    for prefix in ("warm", "backtest"):
        cols = [c for c in table.columns if c.startswith(prefix + "_") and not c.startswith("warm_cos")
                and c != f"{prefix}_mean"]
        if cols:
            table[f"{prefix}_mean"] = table[cols].mean(axis=1, skipna=True)
    return table


def interval(values: pd.Series) -> dict[str, Any]:
    """Mean, 95 % interval (None under two values) and n of the finite values."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    ci = t_interval(vals)
    return {"mean": sum(vals) / len(vals) if vals else None, "ci95": list(ci) if ci else None, "n": len(vals)}


def markdown(table: pd.DataFrame, axes: list[str], name: str) -> str:
    """Per cell: the film's verdict, then each method's difference to naive and its warm-oracle error at each k."""
    table = with_means(table)
    lines = [f"Sweep `{name}`: {table['cell'].nunique()} cells × {table['seed'].nunique()} seeds. Means over seeds "
             "with 95 % intervals (Student's t).", ""]
    for cell, rows in table.groupby("cell", sort=True):
        label = " · ".join(f"{a}={rows[a].iloc[0]}" for a in axes if a in rows.columns) or cell
        films = rows.drop_duplicates("seed")
        forgot = int(films["forgot"].fillna(False).astype(bool).sum())
        lines += [f"### {label}", f"The film forgot on {forgot} of {len(films)} seeds.", "",
                  "| method | k | vs naive (target acc) | vs its shrinkage control | warm-oracle error | n |",
                  "|---|---|---|---|---|---|"]
        methods = rows[rows["method"].map(lambda m: m not in (BASELINE, "scratch", "(film)")
                                          and not str(m).startswith("shrink:"))]
        for (method, k), g in methods.groupby(["method", "k"], sort=True):
            cells = [_fmt(interval(g[c]), c != "warm_mean") if c in g.columns else "–"
                     for c in ("vs_naive", "vs_shrink", "warm_mean")]
            lines.append(f"| {method} | {k:g} | {' | '.join(cells)} | {g['seed'].nunique()} |")
        lines.append("")
    return "\n".join(lines)


def _fmt(stats: dict[str, Any], signed: bool = True) -> str:
    if stats["mean"] is None:
        return "–"
    ci, f = stats["ci95"], ("{:+.4f}" if signed else "{:.4f}").format
    return f(stats["mean"]) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")
