"""The forgetting panel shared by the Trajectory and Runs pages: the film measured stage by stage, its warm-oracle
continuation and the same-data control, the step sizes, and the verdict with its p-value (numbers from
the façade, ``know_core.api``)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from know_core.api import SeedTrajectory, film_panel, fmt, method_colour, stage_tick_labels
from screens._common import show_figure

FILM = method_colour("trajectory")
WARM = method_colour("oracle-warm")
CONTROL = method_colour("control")


def _ys(rows: list[dict], key: str) -> list[float]:
    return [float("nan") if p.get(key) is None else p[key] for p in rows]


def _line(rows: list[dict], key: str, name: str, color: str, dash: str = "solid", symbol: str = "circle",
          group: str = "", show: bool = True) -> go.Scatter:
    return go.Scatter(x=[p["stage"] for p in rows], y=_ys(rows, key), name=name, mode="lines+markers",
                      legendgroup=group or name, showlegend=show, line=dict(color=color, dash=dash),
                      marker=dict(symbol=symbol, size=8), customdata=[p.get("size") for p in rows],
                      hovertemplate=f"{name}<br>stage %{{x}} · |D| = %{{customdata}}<br>%{{y:.4f}}<extra></extra>")


def film_figure(panel: dict) -> go.Figure:
    """Source test loss (left) and accuracy (right) along the film, the warm oracles continuing it to the left of Θ0
    (stage −k = |D0|/r^k images) and the control film C_k (Θ0 trained k more stages on D0 itself) over the stages."""
    stages, theta0 = panel["stages"], panel["stages"][:1]
    warm, control = theta0 + panel["warm"], theta0 + panel["control"]
    last = _last(panel)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("source test loss", "accuracy"), horizontal_spacing=0.14)
    for col, key in ((1, "source_loss"), (2, "source_acc")):
        first = col == 1
        fig.add_trace(_line(stages, key, f"forgetting film Θ0 → {last}", FILM, group="film", show=first), 1, col)
        if panel["warm"]:
            fig.add_trace(_line(warm, key, "warm oracles Θ₋ₖ (more data)", WARM, symbol="star", group="warm",
                                show=first), 1, col)
        if panel["control"]:
            fig.add_trace(_line(control, key, "control Cₖ (same data, more training)", CONTROL, dash="dash",
                                symbol="x", group="control", show=first), 1, col)
    if any(p["removed_acc"] is not None for p in stages):
        fig.add_trace(_line(stages, "removed_acc", "accuracy on the removed samples D0 \\ D_s", FILM, dash="dot",
                            symbol="triangle-up"), 1, 2)
    ticks, labels = stage_tick_labels(panel)
    fig.update_xaxes(
        tickvals=ticks, ticktext=labels, title_text="stage s (warm oracles: −k) · data ÷ |D0|", automargin=True
    )
    fig.update_yaxes(title_text="source test loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (fraction)", row=1, col=2)
    fig.update_layout(
        title="Forgetting panel: loss and accuracy along the film",
        height=420,
        legend=dict(orientation="h", y=-0.3),
        margin=dict(t=70),
    )
    return fig


def steps_figure(panel: dict) -> go.Figure:
    stages = [p for p in panel["stages"] if p["stage"] > 0]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=[p["stage"] for p in stages],
            y=_ys(stages, "step_rel"),
            name="‖Θₛ − Θₛ₋₁‖ / ‖Θ0‖",
            marker_color=FILM,
            opacity=0.7,
            hovertemplate="stage %{x}<br>step %{y:.2%} of ‖Θ0‖<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=[p["stage"] for p in stages],
            y=_ys(stages, "step_cos"),
            mode="lines+markers",
            name="cosine with the previous step",
            line=dict(color="black"),
            hovertemplate="stage %{x}<br>cosine %{y:.3f}<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="stage s", dtick=1)
    fig.update_yaxes(title_text="relative step", tickformat=".1%", secondary_y=False)
    fig.update_yaxes(
        title_text="cosine of successive steps",
        range=[-1, 1],
        tickvals=[-1, -0.5, 0, 0.5, 1],
        showgrid=False,
        secondary_y=True,
    )
    fig.update_layout(
        title="Step sizes and directions along the film",
        height=420,
        legend=dict(orientation="h", y=-0.3),
        margin=dict(t=70),
    )
    return fig


def _last(panel: dict) -> str:
    """The most-forgotten stage Θ_{S−1} as plain text (Θ₄ for a five-stage film)."""
    return f"Θ{fmt.subscript(max(len(panel['stages']) - 1, 0))}"


def _p(value: float | None) -> str:
    return fmt.pvalue(value).removeprefix("p = ")


def forgetting_panel(film: SeedTrajectory, r: float, key: str) -> dict:
    """Draw the panel for one seed's film; returns the panel's records."""
    panel = film_panel(film, r)
    report = panel["report"]
    (st.success if panel["forgot"] else st.warning)(panel["verdict"] or "No verdict recorded for this film.")
    if report is None:
        st.caption(
            "This run was recorded before forgetting was measured stage by stage: only source accuracy is "
            "shown (no loss, removed-sample accuracy, step sizes or p-value)."
        )
    else:
        cols = st.columns([1, 1, 1, 1, 2])  # the pattern is a word, the others numbers: it gets the room
        cols[0].metric("p (loss)", _p(report.p_value), help=f"paired one-sided test, Θ0 vs {_last(panel)}")
        cols[1].metric("p (accuracy)", _p(report.p_value_acc), help=f"McNemar, Θ0 vs {_last(panel)}")
        cols[2].metric("strength", fmt.num(report.strength, 2), help="the final loss rise in noise-band units")
        cols[3].metric("smoothness", fmt.num(report.smoothness, 2), help="share of the loss movement that goes up")
        cols[4].metric("pattern", report.pattern, report.kind or None, delta_color="off")
    # One above the other, each the page's full width: side by side, a projector's 1024 px cut their titles and ran
    # the stage labels into the axis titles.
    show_figure(film_figure(panel), f"{key}-film")
    if report is not None:
        show_figure(steps_figure(panel), f"{key}-steps")
    if not panel["warm"]:
        st.caption(
            "No warm oracles in this run (recorded before they existed, turned off, or the source pool "
            "cannot hold |D0|/r images)."
        )
    with st.expander("Per stage, in numbers"):
        rows = [
            {
                "stage": p["stage"],
                "images": p["size"],
                "steps": p.get("steps"),
                "source loss": p["source_loss"],
                "source acc": p["source_acc"],
                "removed acc": p.get("removed_acc"),
                "step ‖Δ‖/‖Θ0‖": p.get("step_rel"),
                "step cosine": p.get("step_cos"),
                "p vs Θ0": p.get("stage_p"),
                "film": name,
            }
            for name, part in (
                ("warm oracle", panel["warm"][::-1]),
                ("forgetting", panel["stages"]),
                ("control", panel["control"]),
            )
            for p in part
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    return panel
