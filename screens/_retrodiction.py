"""Compare page's retrodiction section: every prediction scored against the warm oracle (the film really continued
on more data), per method and group, whole move and the part more data adds, beside the backtest."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from know_core.api import fmt, method_label, method_short_label, retrodiction_headline, retrodiction_summary
from screens._common import md, show_figure
from screens._figures import legend_below

GROUP_COLORS = {"conv": "#1f77b4", "fc": "#ff7f0e", "bias": "#2ca02c"}
# rows count from the bottom (start_cell="bottom-left"): row 1, the cosines, carries the shared x-axis and its title
PANELS = (("rel_error", 2, 1), ("rel_error_data", 2, 2), ("cosine", 1, 1), ("cosine_data", 1, 2))
PATTERNS = ("", "/", ".", "x", "-")  # one hatching per overlaid run


def _summaries(loaded: list) -> list[dict]:
    out = []
    for info, res in loaded:
        backtest: dict[tuple[str, str], list[float]] = {}
        for b in res.backtest:
            if b.get("rel_error") is not None and not b.get("layer"):
                backtest.setdefault((b["method"], b["group"]), []).append(b["rel_error"])
        for row in retrodiction_summary(res.retrodiction):
            bt = backtest.get((row["method"], row["group"]))
            out.append({**row, "run": info.name, "backtest": sum(bt) / len(bt) if bt else None})
    return out


def retrodiction_figure(rows: list[dict], multi: bool) -> go.Figure:
    """Four panels sharing one x-axis per column: only the bottom row carries the (method, scale) tick labels, so
    they never run into the titles of the panels below; several runs differ by hatching, not by longer labels."""
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.07,
                        start_cell="bottom-left",
                        subplot_titles=("cosine · whole move", "cosine · data part",
                                        "relative error · whole move Θ₋ₖ − Θ0",
                                        "relative error · data part Θ₋ₖ − Cₖ"))
    df = pd.DataFrame(rows)
    df["x"] = df["method"].map(method_short_label) + " " + df["scale"].map(fmt.scale)  # "control film ×4"
    runs = list(dict.fromkeys(df["run"]))
    for (run, group), part in df.groupby(["run", "group"], sort=False):
        name = group + (f" · {run}" if multi else "")
        for metric, row, col in PANELS:
            spread = part[f"{metric}_std"].where(part["seeds"] > 1)
            fig.add_trace(go.Bar(x=part["x"], y=part[metric], name=name, legendgroup=name,
                                 showlegend=(row, col) == (1, 1), marker_color=GROUP_COLORS.get(group),
                                 marker_pattern_shape=PATTERNS[runs.index(run) % len(PATTERNS)],
                                 offsetgroup=name, error_y=dict(type="data", array=spread.tolist(),
                                                                visible=bool((part["seeds"] > 1).any())),
                                 hovertemplate=f"{name}: %{{x}}<br>{metric} %{{y:.3g}}<extra></extra>"),
                          row=row, col=col)
    for col in (1, 2):
        fig.add_hline(y=1.0, line=dict(color="black", dash="dot"), row=2, col=col)
        fig.add_hline(y=0.0, line=dict(color="black", width=1), row=1, col=col)
        fig.update_yaxes(range=[-1, 1], row=1, col=col)
        fig.update_xaxes(title_text="method and scaling factor", automargin=True, row=1, col=col)
    fig.update_yaxes(title_text="‖Θ̂ − Θ₋ₖ‖ / ‖Θ0 − Θ₋ₖ‖", row=2, col=1)
    fig.update_yaxes(title_text="cosine with the real move", row=1, col=1)
    fig.update_layout(title="Retrodiction against the warm oracle, per method and parameter group", barmode="group",
                      height=720, legend_title="parameter group", margin=dict(t=80))
    return legend_below(fig)


def retrodiction_section(loaded: list) -> None:
    rows = _summaries(loaded)
    if not rows:
        st.info("These runs have no warm oracles (no `retrodiction` rows): they were recorded before warm oracles "
                "existed, with oracles off, or from a pool too small to hold |D0|/r images.")
        return
    st.caption(
        "The **warm oracle** Θ₋ₖ is the film really continued on nested supersets of D0 — exactly what Θ̂₋ₖ "
        "claims to be. *Relative error* 1.0 is no better than keeping Θ0; *cosine* 1 is the right direction, "
        "below 0 points away. The **data part** compares with Θ₋ₖ − Cₖ, where the control Cₖ trained Θ0 as "
        "long on D0 itself: what more data adds beyond the drift of training longer. The row *control* is Cₖ "
        "itself. The backtest column (hide Θ0, predict it back) is the same method's error on the film's own end.")
    show_figure(retrodiction_figure(rows, len(loaded) > 1), "compare-retrodiction")
    table = pd.DataFrame([{"run": r["run"], "method": method_label(r["method"]), "scale": fmt.scale(r["scale"]),
                           "group": r["group"], "seeds": r["seeds"], "rel. error": r["rel_error"],
                           "cosine": r["cosine"], "rel. error (data part)": r["rel_error_data"],
                           "cosine (data part)": r["cosine_data"], "backtest rel. error": r["backtest"]}
                          for r in rows])
    if len(loaded) == 1:
        table = table.drop(columns="run")
    numbers = [c for c in table.columns if c not in ("run", "method", "scale", "group", "seeds")]
    shown = table.assign(**{c: [fmt.num(v) for v in table[c]] for c in numbers})  # 3 significant digits, — if none
    st.dataframe(shown, hide_index=True, width="stretch", key="compare-retro-table")
    st.download_button("Download the retrodiction table (CSV)", table.to_csv(index=False),
                       "know-retrodiction.csv", "text/csv", on_click="ignore", key="compare-retro-csv")


def retrodiction_headlines(loaded: list) -> list[str]:
    """One sentence per run: which predictor got nearest to the real larger-data network against keeping Θ0."""
    multi = len(loaded) > 1
    return [(f"{md(info.name)}: " if multi else "") + md(retrodiction_headline(res)) for info, res in loaded]
