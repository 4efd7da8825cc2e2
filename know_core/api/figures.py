"""Plotly figures of a film, built from the records of :mod:`.views` and drawn the same way by the dashboard and by
the notebook library (:mod:`.library`): this module imports plotly but never streamlit, so a notebook, a script or a
page can each show or save the figures (``fig.show()``, ``fig.write_html(...)``)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from know_core.experiment.methods import colour as method_colour
from know_core.experiment.methods import label as method_label
from know_core.experiment.methods import method_order
from know_core.experiment.panels import scale_ticks
from know_core.experiment.pca import weight_curves
from know_core.experiment.seedweights import SeedWeights

SYMBOLS = {"trajectory": "circle", "prediction": "diamond", "oracle": "star", "warm": "star", "control": "x"}


def _pca_series(points: list[dict[str, Any]]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Series name -> (kind, points in drawing order): the film from its most-forgotten stage to Θ0, then each
    method's predictions (and the oracles, warm oracles and control film where the run has them) starting at Θ0."""
    traj = sorted((p for p in points if p["kind"] == "trajectory"), key=lambda p: -p["stage"])
    theta0 = next(p for p in traj if p["stage"] == 0)
    series: dict[str, tuple[str, list[dict[str, Any]]]] = {f"trajectory (Θ{len(traj) - 1} → Θ0)": ("trajectory", traj)}
    methods = dict.fromkeys(p["method"] for p in points if p["kind"] in ("prediction", "oracle"))
    for method in sorted(methods, key=method_order):
        pts = sorted((p for p in points if p["method"] == method), key=lambda p: p["scale"])
        series[method] = ("oracle" if method == "oracle" else "prediction", [theta0, *pts])
    for name, kind in (("warm oracles", "warm"), ("control film", "control")):
        extra = sorted((p for p in points if p["kind"] == kind), key=lambda p: abs(p["stage"]))
        if extra:
            series[name] = (kind, [theta0, *extra])
    return series


def pca_figure(points: list[dict[str, Any]], explained: list[float], title: str | None = None) -> go.Figure:
    """The film and every prediction in one PCA plane: ``points`` are :func:`know_core.api.pca_view`'s records (with
    ``pc1``, ``pc2``), ``explained`` its share of variance per component."""
    explained = list(explained) + [0.0] * (2 - len(explained))
    fig = go.Figure()
    for name, (kind, pts) in _pca_series(points).items():
        key = {"trajectory": "trajectory", "warm": "oracle-warm", "control": "control"}.get(kind, name)
        acc = ["" if p.get("source_acc") is None else f"<br>source accuracy {p['source_acc']:.4f}" for p in pts]
        fig.add_trace(go.Scatter(
            x=[p["pc1"] for p in pts], y=[p["pc2"] for p in pts], mode="lines+markers",
            name=method_label(name) if kind in ("prediction", "oracle") else name,
            line=dict(color=method_colour(key), width=3 if kind in ("trajectory", "warm") else 2,
                      dash={"oracle": "dot", "control": "dash"}.get(kind, "solid")),
            marker=dict(symbol=SYMBOLS[kind], size=9 if kind == "trajectory" else 11,
                        line=dict(width=1, color="black")),
            text=[f"<b>{p['label']}</b>{a}" for p, a in zip(pts, acc)], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=title or "Film and predictions in one PCA plane", height=560,
                      xaxis_title=f"PC1 ({explained[0]:.0%} of variance; weight-space units)",
                      yaxis_title=f"PC2 ({explained[1]:.0%} of variance; weight-space units)")
    return fig


def curves_figure(sw: SeedWeights, r: float, n: int, layer: str | None, seed: int, scales: list[float]) -> go.Figure:
    """``n`` sampled weights of ``layer`` (None: all predicted ones), one panel each: the window (most-forgotten on the
    left, Θ0 at 1), every method's rollout, the warm oracles and the cold oracle where the run has them."""
    curves = weight_curves(sw, r, n, layer, sample_seed=seed)
    cols = 3
    rows = -(-len(curves) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{c['param']}[{c['index']}] ({c['group']})"
                                                              for c in curves])
    for i, c in enumerate(curves):
        row, col = i // cols + 1, i % cols + 1
        first = i == 0
        w = sorted(c["window"], key=lambda p: p["scale"])
        fig.add_trace(go.Scatter(x=[p["scale"] for p in w], y=[p["value"] for p in w], mode="lines+markers",
                                 name="window (trajectory)", legendgroup="window", showlegend=first,
                                 line=dict(color=method_colour("trajectory"), width=3)), row=row, col=col)
        theta0 = w[-1]
        for method, pts in c["methods"].items():
            xs, ys = [1.0] + [p["scale"] for p in pts], [theta0["value"]] + [p["value"] for p in pts]
            fig.add_trace(go.Scatter(x=xs, y=ys,
                                     mode="lines+markers", name=f"{method_label(method)} rollout", legendgroup=method,
                                     showlegend=first, line=dict(color=method_colour(method), dash="dash")),
                          row=row, col=col)
        if c["warm"]:
            fig.add_trace(go.Scatter(x=[1.0] + [p["scale"] for p in c["warm"]],
                                     y=[theta0["value"]] + [p["value"] for p in c["warm"]], mode="lines+markers",
                                     name="warm oracles", legendgroup="warm", showlegend=first,
                                     line=dict(color=method_colour("oracle-warm"), width=3),
                                     marker=dict(symbol="star", size=10)), row=row, col=col)
        if c["oracle"]:
            fig.add_trace(go.Scatter(x=[p["scale"] for p in c["oracle"]], y=[p["value"] for p in c["oracle"]],
                                     mode="markers", name="oracle", legendgroup="oracle", showlegend=first,
                                     marker=dict(symbol="star", size=11, color=method_colour("oracle"))),
                          row=row, col=col)
    tickvals, ticktext = scale_ticks(r, len(sw.stages), max([*scales, 1.0]))
    fig.update_xaxes(type="log", title_text="data ÷ |D0| (log)", tickvals=tickvals, ticktext=ticktext)
    fig.update_yaxes(title_text="weight value")
    fig.update_layout(title="Per-weight curves: the window (most-forgotten on the left, Θ0 at 1) and each method's "
                            "rollout", height=320 * rows)
    return fig


__all__ = ["curves_figure", "pca_figure"]
