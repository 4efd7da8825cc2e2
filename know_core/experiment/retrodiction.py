"""Retrodiction against its ground truth: every prediction Θ̂_{−k} scored against the warm oracle Θ_{−k}, and
drift-corrected retrodiction.

Scores per group and per layer (``rel_error`` 1.0 = no better than keeping Θ0; lower is better):

- ``rel_error`` = ‖Θ̂_{−k} − Θ_{−k}‖ / ‖Θ0 − Θ_{−k}‖, ``cosine`` = cos(Θ̂_{−k} − Θ0, Θ_{−k} − Θ0): the whole move;
- ``rel_error_data``, ``cosine_data``: the predicted move against the part of the warm oracle's move that more data
  adds, Θ_{−k} − C_k (C_k: Θ0 trained k more stages on D0 itself). For a drift-corrected method the predicted move is
  Θ̂_{−k} − C_k (it adds the drift back on purpose); for any other method it is Θ̂_{−k} − Θ0.

**Drift correction**: the forgetting film Θ_s holds both what losing data did and the drift any further training
causes. Subtracting the control film's drift gives Θ'_s = Θ_s − (C_s − Θ0); a predictor extrapolates that film, and
the drift of k more stages is added back: Θ̂^{dc}_{−k} = Θ̂'_{−k} + (C_k − Θ0). The method is named ``<method>+dc``.
"""

from __future__ import annotations

from statistics import mean

import torch

from know_core.common.hooks import Hooks
from know_core.engine.extrapolate import extrapolate
from know_core.engine.filmcontext import Continuation
from know_core.engine.windows import row_owner, to_windows
from know_core.experiment.backtest import relative_scores
from know_core.models import GROUPS
from know_core.predictors import Predictor


def _shift(state: dict[str, torch.Tensor], plus: dict[str, torch.Tensor], minus: dict[str, torch.Tensor],
           groups: dict[str, str]) -> dict[str, torch.Tensor]:
    """``state + plus − minus`` on the predicted groups; every other tensor kept from ``state``."""
    out = dict(state)
    for name, group in groups.items():
        if group in GROUPS:
            out[name] = (state[name].double() + plus[name].double() - minus[name].double()).to(state[name].dtype)
    return out


def drift_corrected_film(states: list[dict[str, torch.Tensor]], control: Continuation,
                         groups: dict[str, str]) -> list[dict[str, torch.Tensor]]:
    """[Θ0, Θ'_1, …] with Θ'_s = Θ_s − (C_s − Θ0); needs a control film at least as long as the forgetting film."""
    if len(control.states) < len(states) - 1:
        raise ValueError(f"the control film has {len(control.states)} stages; drift correction needs "
                         f"{len(states) - 1}")
    theta0 = states[0]
    return [theta0] + [_shift(states[s], theta0, control.states[s - 1], groups) for s in range(1, len(states))]


def extrapolate_dc(states: list[dict[str, torch.Tensor]], control: Continuation, groups: dict[str, str],
                   predictor: Predictor, steps: int, reset_norm: bool = False,
                   hooks: Hooks | None = None) -> list[dict[str, torch.Tensor]]:
    """Θ̂^{dc}_{−1} … Θ̂^{dc}_{−steps}: the predictor on the drift-corrected film, the control's drift added back.
    Beyond the control film's length the last recorded drift is used (and the caller should say so)."""
    film = drift_corrected_film(states, control, groups)
    theta0 = states[0]
    out = []
    for k, pred in enumerate(extrapolate(film, groups, predictor, steps, reset_norm, hooks), start=1):
        drift = control.states[min(k, len(control.states)) - 1]
        out.append(_shift(pred, drift, theta0, groups))
    return out


def _vectors(state: dict[str, torch.Tensor], groups: dict[str, str]) -> dict[str, torch.Tensor]:
    return {g: w[:, 0].double() for g, w in to_windows([state], groups).items()}


def score(pred: dict[str, torch.Tensor], warm: dict[str, torch.Tensor], control: dict[str, torch.Tensor] | None,
          theta0: dict[str, torch.Tensor], groups: dict[str, str], drift_corrected: bool = False) -> list[dict]:
    """Rows ``{group, layer, n, rel_error, cosine, rel_error_data, cosine_data}`` (group rows have ``layer: ""``)."""
    p, w, t0 = _vectors(pred, groups), _vectors(warm, groups), _vectors(theta0, groups)
    c = _vectors(control, groups) if control is not None else None
    rows = []
    for group in p:
        spans = [("", 0, len(p[group]))] + row_owner(groups, theta0, group)
        for layer, lo, hi in spans:
            pv, wv, tv = p[group][lo:hi], w[group][lo:hi], t0[group][lo:hi]
            rel, cos = relative_scores(pv, wv, tv)
            row = {"group": group, "layer": layer, "n": hi - lo, "rel_error": rel, "cosine": cos,
                   "rel_error_data": None, "cosine_data": None}
            if c is not None:
                cv = c[group][lo:hi]
                move = pv - cv if drift_corrected else pv - tv
                row["rel_error_data"], row["cosine_data"] = relative_scores(cv + move, wv, cv)
            rows.append(row)
    return rows


def retrodiction_table(rows: list[dict]) -> list[dict]:
    """Group-level rows averaged over seeds: one entry per (method, scale, group) with the mean of each score."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("layer") == "":
            cells.setdefault((r["method"], r["scale"], r["group"]), []).append(r)
    out = []
    for (method, scale, group), rs in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        entry = {"method": method, "scale": scale, "group": group, "n": len(rs)}
        for key in ("rel_error", "cosine", "rel_error_data", "cosine_data"):
            values = [r[key] for r in rs if r.get(key) is not None]
            entry[key] = mean(values) if values else None
        out.append(entry)
    return out


def retrodiction_verdicts(rows: list[dict]) -> list[str]:
    """Plain sentences: per method, at how many (scale, group) cells it lands closer to the warm oracle than Θ0."""
    table = [e for e in retrodiction_table(rows) if e["rel_error"] is not None]
    lines = []
    for method in sorted({e["method"] for e in table}):
        cells = [e for e in table if e["method"] == method]
        better = [e for e in cells if e["rel_error"] < 1.0]
        best = min(cells, key=lambda e: e["rel_error"])
        who = "the control Cₖ (Θ0 trained further on D0)" if method == "control" else method
        lines.append(f"Against the warm oracle, {who} is closer than keeping Θ0 in {len(better)} of {len(cells)} "
                     f"(scale, group) cells; best {best['rel_error']:.3f} ({best['group']} ×{best['scale']:g}).")
    return lines
