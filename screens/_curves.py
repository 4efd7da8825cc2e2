"""Per-weight curves on the Trajectory page: a few sampled weights followed through the film and every prediction."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from know_core.api import SeedWeights, method_colour, scale_ticks, weight_curves


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
                                     mode="lines+markers", name=f"{method} rollout", legendgroup=method,
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
