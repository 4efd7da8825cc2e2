"""Forget runs (kind ``forget``: a film recorded by ``forget`` or ``record_forgetting``, on a registered model or the
user's own) on the Compare and Scaling pages. A forget run holds the film (with its warm oracles and control film,
where the data allowed them) and the predictions stored into it (Predict form or ``predict --run``, drawn and scored
on the Trajectory page); it has no cold oracles and no target task, so what Compare can show is the backtest (hide
Θ0, predict it back from the later stages, as for an imported film) and what Scaling can show is where the warm
oracles got on the source task. Each page says so in place of what needs an experiment."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    ExperimentResult,
    KnowError,
    backtest_headline,
    film_panel,
    fmt,
    forget_scaling_headline,
    method_colour,
    method_label,
    protocol_line,
)
from screens._common import load_film, md, runs_dir, scale_axis, seed_weights, show_figure
from screens._imported import backtest_section

NEEDS_EXPERIMENT = ("A forget run has no target task and no cold oracles: accuracy after fine-tuning on a target and "
                    "the distance to a network trained from scratch on more data need an experiment run (Experiments "
                    "page). Predictions are stored into it with the Predict form (Trajectory or Runs page) or "
                    "`predict --run`, and the Trajectory page scores each against the warm oracle at its scale. "
                    "Its comparison here is the backtest: hide Θ0 and predict it back from the later stages.")


def compare_view(info) -> str | None:
    """The Compare page for a forget run: its backtest per group and per layer. Returns the headline sentence for
    the page's answer (None when the run cannot be read: the error is on the page)."""
    res = load_film(info)
    if res is None:
        return None
    st.subheader(md(f"{info.name} (forget run)"), anchor=False)
    st.caption(md(protocol_line(res.config)))
    st.info(NEEDS_EXPERIMENT)
    try:
        sw = seed_weights(runs_dir(), info.id, info.updated, res.seeds[0])
    except KnowError as exc:
        st.error(f"This run's weights cannot be read: {md(exc)}")
        return None
    if len(sw.stages) < 3:
        line = (f"A backtest hides Θ0 and predicts it back from the later stages: it needs at least 3 stages; this "
                f"film has {len(sw.stages)}.")
        st.info(line)
        return line
    return backtest_headline(backtest_section(sw, info, "forget run"))


def warm_figure(info, res: ExperimentResult) -> go.Figure | None:
    """Source accuracy of Θ0 (×1) and of the warm oracles Θ₋ₖ (the film really continued on ×2, ×4 … data), by
    scaling factor; None when the run has no warm oracle."""
    panel = film_panel(res.trajectories[0], res.r)
    if not panel["warm"]:
        return None
    points = panel["stages"][:1] + sorted(panel["warm"], key=lambda w: w["scale"])
    scales = [p["scale"] for p in points]
    fig = go.Figure(go.Scatter(
        x=scales, y=[p["source_acc"] for p in points], mode="lines+markers", name=method_label("oracle-warm"),
        line=dict(color=method_colour("oracle-warm"), width=3), marker=dict(symbol="star", size=12),
        customdata=[[fmt.scale(s), fmt.num(p["source_acc"])] for s, p in zip(scales, points)],
        hovertemplate="%{customdata[0]}<br>source accuracy %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=f"Source accuracy of Θ0 and its warm oracles, by scaling factor ({info.name})",
                      xaxis=scale_axis(scales), yaxis_title="source test accuracy (fraction)", height=380,
                      legend_title="method", showlegend=True)
    return fig


def scaling_view(info) -> str | None:
    """The Scaling page for a forget run: no downstream task, said in one line; its warm oracles' source accuracy
    where it has any. Returns the headline sentence (None when the run cannot be read)."""
    res = load_film(info)
    if res is None:
        return None
    st.subheader(md(f"{info.name} (forget run)"), anchor=False)
    st.caption(md(protocol_line(res.config)))
    fig = warm_figure(info, res)
    if fig is not None:
        show_figure(fig, f"scaling-forget-{info.id}")
    return forget_scaling_headline(res)
