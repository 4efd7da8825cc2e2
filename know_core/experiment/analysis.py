"""The tables the pages show beside the pictures: aggregates of a run's rows, its invalid methods, and a per-layer
backtest of one seed's stored trajectory (the pictures' numbers are in :mod:`.pca` and :mod:`.landscape`)."""

from __future__ import annotations

from dataclasses import asdict
from statistics import mean, stdev
from typing import Any

from know_core.common.errors import KnowError
from know_core.engine.forgetting import Trajectory
from know_core.experiment.backtest import backtest_weights
from know_core.experiment.methods import make_predictor
from know_core.experiment.seedweights import SeedWeights


def aggregate(rows: list[dict], metric: str) -> list[dict[str, Any]]:
    """Mean, standard deviation (over seeds) and count of ``metric`` per (method, scale), valid rows only."""
    table: dict[tuple[str, float], list[float]] = {}
    for row in rows:
        if row.get("valid", True) and row.get(metric) is not None:
            table.setdefault((row["method"], float(row["scale"])), []).append(float(row[metric]))
    return [{"method": m, "scale": s, "mean": mean(v), "std": stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
            for (m, s), v in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1]))]


def invalid_methods(rows: list[dict]) -> dict[str, str]:
    """Methods that could not predict (e.g. KNOWN without its checkpoint), with the reason."""
    return {row["method"]: row.get("reason", "") for row in rows if not row.get("valid", True)}


def layer_backtest(sw: SeedWeights, methods: list[str], official_known: str | None = None) -> list[dict[str, Any]]:
    """Backtest rows per layer (hide Θ0, predict it back from the later stages) for each method that can run here;
    a method that cannot (KNOWN without a checkpoint, too few stages) gives one row with a ``note``."""
    n = len(sw.stages)
    traj = Trajectory(sw.stages, sw.groups, list(sw.info.get("stage_sizes", [0] * n)), [0.0] * n,
                      list(sw.info.get("source_acc_stages", [0.0] * n)), [0.0] * n)
    out: list[dict[str, Any]] = []
    for method in methods:
        try:
            predictor = make_predictor(method, official_known)
            rows, _ = backtest_weights(traj, predictor, 1, method)
        except (KnowError, OSError, ValueError) as exc:
            out.append({"method": method, "note": str(exc)})
            continue
        out += [asdict(r) for r in rows if r.level == "layer"]
    return out
