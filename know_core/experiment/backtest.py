"""Backtest a predictor on a recorded trajectory: hide Θ0 (and Θ1 for two steps), predict it back, compare.

Figures, per group and per layer:
- ``rel_error`` = ‖θ̂0 − θ0‖ / ‖θ_v − θ0‖ where θ_v is the newest stage still visible: 1.0 means "no better than
  keeping θ_v" (the naive answer), below 1 is a real recovery, above 1 makes things worse;
- ``cosine`` between the predicted change θ̂0 − θ_v and the true change θ0 − θ_v (None for a zero change);
plus the source test accuracy of the recovered model beside the true Θ0's (normalisation layers taken from θ_v).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from know_core.common.errors import KnowError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig
from know_core.engine.extrapolate import predict_groups
from know_core.engine.forgetting import Trajectory
from know_core.engine.names import user_named
from know_core.engine.train import evaluate
from know_core.engine.windows import from_vectors, row_owner, to_windows
from know_core.models import create_model
from know_core.predictors import Predictor


@dataclass
class BacktestRow:
    method: str
    steps: int
    level: str  # "group" or "layer"
    group: str
    layer: str  # parameter name, or "" for a group row
    n: int
    rel_error: float | None
    cosine: float | None


def relative_scores(pred: torch.Tensor, true: torch.Tensor, visible: torch.Tensor) -> tuple[float | None, float | None]:
    pred, true, visible = pred.double(), true.double(), visible.double()
    step = torch.linalg.vector_norm(true - visible)
    rel = float(torch.linalg.vector_norm(pred - true) / step) if step > 0 else None
    moved, wanted = pred - visible, true - visible
    denom = torch.linalg.vector_norm(moved) * torch.linalg.vector_norm(wanted)
    cos = float(torch.dot(moved, wanted) / denom) if denom > 0 else None
    return rel, cos


def backtest_weights(traj: Trajectory, predictor: Predictor, steps: int = 1,
                     method: str | None = None) -> tuple[list[BacktestRow], dict[str, torch.Tensor]]:
    """Rows of figures and the recovered Θ̂0 (a state dict). ``steps`` = number of hidden stages (1 or 2)."""
    return backtest_states(traj.states, traj.groups, predictor, steps, method)


def backtest_states(states: list[dict[str, torch.Tensor]], groups: dict[str, str], predictor: Predictor,
                    steps: int = 1, method: str | None = None) -> tuple[list[BacktestRow], dict[str, torch.Tensor]]:
    """:func:`backtest_weights` on any film ``states`` (Θ0 first) and its ``groups``: a forget run's trajectory or
    an imported film alike."""
    if steps < 1 or len(states) - steps < 2:
        raise KnowError(f"a {steps}-step backtest needs at least {steps + 2} stages; this trajectory has "
                        f"{len(states)}")
    method = method or predictor.name
    visible_states = states[steps:]
    preds = predict_groups(visible_states, groups, predictor, steps)
    true_w = to_windows([states[0]], groups)
    vis_w = to_windows([visible_states[0]], groups)
    rows = []
    for group, pred in preds.items():
        p, t, v = pred[:, -1], true_w[group][:, 0], vis_w[group][:, 0]
        rows.append(BacktestRow(method, steps, "group", group, "", len(p), *relative_scores(p, t, v)))
        for name, lo, hi in row_owner(groups, states[0], group):
            rows.append(BacktestRow(method, steps, "layer", group, name, hi - lo, *relative_scores(p[lo:hi], t[lo:hi],
                                                                                             v[lo:hi])))
    recovered = from_vectors(visible_states[0], groups, {g: p[:, -1] for g, p in preds.items()})
    return rows, recovered


def backtest_run(cfg: ForgetConfig, traj: Trajectory, predictors: dict[str, Predictor],
                 steps: int = 1) -> dict[str, list[dict]]:
    """Backtest several predictors on one run. Returns ``rows`` (weights) and ``accuracy`` (recovered models).

    A predictor that cannot run on this trajectory (e.g. KNOWN needs 5 visible stages) gets an accuracy row with
    its reason instead of figures, so one method's limits never hide the others' results.
    """
    if user_named(cfg):  # the user's own network or data: the run names them but cannot rebuild them
        def accuracy(state: dict[str, torch.Tensor]) -> float | None:
            return None
    else:
        ds = load_dataset(cfg.dataset, cfg.data_root)
        model = create_model(cfg.model, ds.input_shape, ds.num_classes)

        def accuracy(state: dict[str, torch.Tensor]) -> float | None:
            model.load_state_dict(state)
            return evaluate(model, ds.x_test, ds.y_test)[1]

    rows: list[dict] = []
    acc_rows: list[dict] = [{"method": "true Θ0", "steps": steps, "source_acc": accuracy(traj.states[0]),
                             "note": ""},
                            {"method": f"keep Θ{steps}", "steps": steps, "source_acc": accuracy(traj.states[steps]),
                             "note": "naive: the newest visible stage"}]
    for name, predictor in predictors.items():
        try:
            figures, recovered = backtest_weights(traj, predictor, steps, name)
        except KnowError as exc:
            acc_rows.append({"method": name, "steps": steps, "source_acc": None, "note": str(exc)})
            continue
        rows += [asdict(r) for r in figures]
        finite = all(torch.isfinite(t).all() for t in recovered.values() if t.is_floating_point())
        acc_rows.append({"method": name, "steps": steps, "source_acc": accuracy(recovered) if finite else None,
                         "note": "" if finite else "non-finite recovered weights"})
    if user_named(cfg):
        for row in acc_rows:
            row["note"] = row["note"] or "your own network: the run cannot rebuild it to measure accuracy"
    return {"rows": rows, "accuracy": acc_rows}


def format_table(result: dict[str, list[dict]]) -> str:
    """A plain-text table of the group rows and the recovered accuracies, for the CLI."""
    lines = [f"{'method':<14}{'steps':>6}{'group':>7}{'weights':>10}{'rel. error':>12}{'cosine':>9}"]
    for r in result["rows"]:
        if r["level"] != "group":
            continue
        rel = "-" if r["rel_error"] is None else f"{r['rel_error']:.3f}"
        cos = "-" if r["cosine"] is None else f"{r['cosine']:.3f}"
        lines.append(f"{r['method']:<14}{r['steps']:>6}{r['group']:>7}{r['n']:>10}{rel:>12}{cos:>9}")
    lines += ["", "rel. error: 1.0 = no better than keeping the newest visible stage; lower is better.", "",
              f"{'recovered model':<24}{'source acc':>11}  note"]
    for a in result["accuracy"]:
        acc = "-" if a["source_acc"] is None else f"{a['source_acc']:.4f}"
        lines.append(f"{a['method']:<24}{acc:>11}  {a['note']}")
    return "\n".join(lines)
