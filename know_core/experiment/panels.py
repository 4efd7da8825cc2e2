"""Plain records for the dashboard's forgetting, warm-oracle and retrodiction views; it draws nothing.

- :func:`protocol_line`: the one line every page that shows a run prints (``describe`` of its source config).
- :func:`film_panel`: a seed's forgetting film, warm oracles and control film on one stage axis (warm oracle Θ_{−k} at
  stage −k, control C_k at stage k), plus the forgetting report's per-stage figures and verdict.
- :func:`continuation_scores`: does each prediction point along the real continuation? Relative error and cosine of
  every prediction against the warm oracle over the chosen parameters, in full weight space (not the 2-D picture).
- :func:`retrodiction_summary`: the ``retrodiction`` rows of a run, mean ± std over seeds per method, scale and group.
- :func:`scale_ticks`: tick values and labels of a data-size axis, computed from r.
"""

from __future__ import annotations

import math
import re
from statistics import mean, stdev
from typing import Any

from know_core.common.errors import KnowError
from know_core.engine.config import ForgetConfig, from_dict, scale_of_steps, steps_of_scale
from know_core.engine.measure import ForgettingReport
from know_core.engine.protocols import describe
from know_core.engine.windows import flatten
from know_core.experiment.backtest import relative_scores
from know_core.experiment.methods import method_order
from know_core.experiment.seedweights import predicted, selected_params

METRICS = ("rel_error", "cosine", "rel_error_data", "cosine_data")


def protocol_line(config: Any) -> str:
    """``describe`` of a run's forgetting settings; ``config`` is an experiment's config (with ``source``) or a
    forgetting run's, typed or as stored. Runs recorded before protocols existed read as ``custom`` with the
    release's epochs:N budget."""
    source = getattr(config, "source", config)
    if isinstance(source, ForgetConfig):
        return describe(source)
    source = config.get("source", config) if isinstance(config, dict) else {}
    try:
        return describe(from_dict(ForgetConfig, dict(source)))
    except (KnowError, TypeError, ValueError, AttributeError) as exc:
        return f"protocol unknown (the run's config cannot be read: {exc})"


def scale_label(scale: float) -> str:
    """×8, ×1/2, ×1/9 …: data relative to |D0|."""
    if scale >= 1 or scale <= 0:
        return f"×{scale:.3g}"
    inv = 1 / scale
    return f"×1/{inv:.3g}" if abs(inv - round(inv)) < 1e-6 else f"×{scale:.3g}"


def scale_ticks(r: float, stages: int = 1, max_scale: float = 1.0) -> tuple[list[float], list[str]]:
    """Tick values r^(S−1) … r, 1, 1/r … up to ``max_scale`` (log axis of data ÷ |D0|) and their labels."""
    vals = [r ** s for s in range(stages - 1, 0, -1)] + [1.0]
    k = 1
    while scale_of_steps(k, r) <= max_scale * (1 + 1e-9):
        vals.append(scale_of_steps(k, r))
        k += 1
    return vals, [scale_label(v) for v in vals]


def natural_key(name: str) -> tuple:
    """Sort key that reads the numbers in a name as numbers: 0, 3, 6, 9, 12, 14 and ``layer2.0`` before
    ``layer10.0`` (text order would give 0, 12, 14, 3 …)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


def film_frames(stages: int, scales: list[float], r: float) -> list[dict[str, Any]]:
    """The frames of the Trajectory animation: the film from the most-forgotten stage S−1 to Θ0 (``shown`` stages),
    then one frame per scale the run really predicted (``k`` steps of 1/r, ``scale``), so the slider never runs past
    the run's largest scale. ``label`` is the slider's text for the frame."""
    frames = [{"label": f"stage {stages - n}", "shown": n, "k": 0, "scale": 1.0} for n in range(1, stages + 1)]
    for scale in sorted({float(s) for s in scales if s > 1}):
        frames.append({"label": scale_label(scale), "shown": stages, "k": steps_of_scale(scale, r), "scale": scale})
    return frames


def report_of(entry: dict[str, Any]) -> ForgettingReport | None:
    """The forgetting report of a trajectory entry of results.json (or a forget run's summary); None for runs
    recorded before it was measured."""
    data = entry.get("forgetting")
    if not data:
        return None
    try:
        return ForgettingReport.from_dict(data)
    except (KeyError, TypeError):
        return None


def _at(values: list | None, i: int) -> Any:
    return values[i] if values is not None and 0 <= i < len(values) else None


def film_panel(entry: dict[str, Any], r: float) -> dict[str, Any]:
    """Everything the forgetting panel draws for one seed.

    ``entry`` is ``results["trajectories"][i]`` (or a forget run's summary with ``warm``/``control`` films): it holds
    ``stage_sizes``, ``stage_steps``, ``source_acc``, ``forgetting`` and the ``warm`` and ``control`` film summaries
    (``{sizes, source_acc, source_loss}`` or None). Returns ``{"stages": rows, "warm": rows, "control": rows,
    "report": ForgettingReport | None, "verdict": str, "forgot": bool}`` with one row per point:
    ``stage`` (negative for warm oracles), ``size``, ``scale``, ``source_loss``, ``source_acc`` and, for the film,
    ``removed_acc``, ``step_rel``, ``step_cos``, ``stage_p`` and ``steps``.
    """
    report = report_of(entry)
    sizes = entry.get("stage_sizes") or []
    accs = report.source_acc if report else entry.get("source_acc") or []
    losses = report.source_loss if report else []
    stages = []
    for s in range(len(accs)):
        stages.append({"stage": s, "size": _at(sizes, s), "scale": r ** s, "steps": _at(entry.get("stage_steps"), s),
                       "source_loss": _at(losses, s), "source_acc": _at(accs, s),
                       "removed_acc": _at(report.removed_acc, s) if report else None,
                       "step_rel": _at(report.step_rel, s) if report else None,
                       "step_cos": _at(report.step_cos, s) if report else None,
                       "stage_p": _at(report.stage_p, s) if report else None})

    def film(name: str, sign: int) -> list[dict[str, Any]]:
        data = entry.get(name) or {}
        out = []
        for i, acc in enumerate(data.get("source_acc") or []):
            k = i + 1
            out.append({"stage": sign * k, "size": _at(data.get("sizes"), i),
                        "scale": scale_of_steps(k, r) if sign < 0 else 1.0, "source_acc": acc,
                        "source_loss": _at(data.get("source_loss"), i)})
        return out

    warm, control = film("warm", -1), film("control", 1)
    verdict = report.verdict() if report else entry.get("verdict", "")
    return {"stages": stages, "warm": warm, "control": control, "report": report, "verdict": verdict,
            "forgot": report.forgot if report else bool(entry.get("forgot"))}


def stage_tick_labels(panel: dict[str, Any]) -> tuple[list[int], list[str]]:
    """Stage-axis ticks −K … S−1 labelled with the stage and its data ÷ |D0| (computed from the stored sizes)."""
    points = sorted({p["stage"]: p for p in panel["warm"] + panel["stages"]}.items())
    return [s for s, _ in points], [f"{s}<br>{scale_label(p['scale'])}" for s, p in points]


def continuation_scores(sw, r: float, layer: str | None = None) -> list[dict[str, Any]]:
    """For every prediction Θ̂_{−k} whose warm oracle Θ_{−k} is stored: ``rel_error`` ‖Θ̂ − Θ_{−k}‖ / ‖Θ0 − Θ_{−k}‖
    (1 = no better than keeping Θ0) and ``cosine`` of (Θ̂ − Θ0) with (Θ_{−k} − Θ0), over the selected parameters;
    the control C_k is scored too ("keep training on D0": the drift every film shares)."""
    if not sw.warm:
        return []
    params = selected_params(sw.groups, layer)
    theta0 = flatten(sw.stages[0], params).double()
    out = []
    for scale in sorted(sw.warm):
        truth = flatten(sw.warm[scale], params).double()
        candidates = {m: by[scale] for m, by in predicted(sw).items() if scale in by}
        k = steps_of_scale(scale, r)
        if k <= len(sw.control):
            candidates["control"] = sw.control[k - 1]
        for method, state in candidates.items():
            rel, cos = relative_scores(flatten(state, params).double(), truth, theta0)
            out.append({"method": method, "scale": scale, "rel_error": rel, "cosine": cos})
    return out


def retrodiction_summary(rows: list[dict[str, Any]], level: str = "group") -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each metric per (method, scale, group) — ``level="layer"`` keeps one
    row per layer instead. Missing values (no control film: no ``_data`` figures) stay None."""
    table: dict[tuple, dict[str, list[float]]] = {}
    for row in rows:
        if (level == "group") == bool(row.get("layer")):
            continue
        key = (row["method"], float(row["scale"]), row["group"], row.get("layer") or "")
        cell = table.setdefault(key, {m: [] for m in METRICS} | {"seeds": []})
        cell["seeds"].append(row.get("seed"))
        for m in METRICS:
            if row.get(m) is not None and math.isfinite(row[m]):
                cell[m].append(float(row[m]))
    out = []
    for (method, scale, group, layer), cell in sorted(table.items(), key=lambda kv: (method_order(kv[0][0]),
                                                                                     kv[0][1], kv[0][2], kv[0][3])):
        rec: dict[str, Any] = {"method": method, "scale": scale, "group": group, "layer": layer,
                               "seeds": len(set(cell["seeds"]))}
        for m in METRICS:
            v = cell[m]
            rec[m] = mean(v) if v else None
            rec[f"{m}_std"] = (stdev(v) if len(v) > 1 else 0.0) if v else None
        out.append(rec)
    return out

