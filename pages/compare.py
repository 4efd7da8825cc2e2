"""Compare page: each predictor beside its norm-matched shrinkage control — backtests, oracle distances, accuracy."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (OFFICIAL, SHRINK_PREFIX, aggregate, invalid_methods, method_colour, predicted_methods,
                           protocol_line)
from pages._common import (experiment_runs, finished_or_welcome, load_results, pick_runs, run_label,
                           show_figure, sync_url)
from pages._domains import pick_domain
from pages._retrodiction import retrodiction_section
from pages._common import md

PREDICTORS = predicted_methods()  # every registered predictor but naive, then known-official

st.title("Compare")
st.markdown(
    "**TaskVector** continues the last step of the trajectory, **ExpFit** fits an exponential to each weight, "
    "**KNOWN** is the learned hyper-model. Each is shown beside its *shrinkage control*: Θ0 simply scaled to the "
    "prediction's size — if the control does as well, the predictor's gain came from shrinking the weights, not from "
    "knowing where they go. The backtest hides Θ0 and predicts it back from the other stages: an error of 1.0 is no "
    "better than keeping Θ1, below 1 is a real recovery.")

runs = experiment_runs()
finished_or_welcome(runs)
chosen = pick_runs(runs, "compare-runs")
sync_url(runs=[r.id for r in chosen])
if not chosen:
    st.info("Pick at least one run.")
    st.stop()

loaded = [(info, res) for info in chosen if (res := load_results(info)) is not None]
domain = pick_domain([res for _, res in loaded], "compare-domain")
loaded = [(info, res.at_domain(domain)) for info, res in loaded]
tag = (lambda info: f" · {info.name}") if len(loaded) > 1 else (lambda info: "")
for info, res in loaded:
    st.caption(md(f"{info.name}: {protocol_line(res.config)}"))


def paired_bars(metric: str, title: str, ytitle: str) -> go.Figure:
    """Per method and scale: the predictor's bar beside its shrinkage control's, error bars over seeds."""
    fig, refs = go.Figure(), []
    for info, res in loaded:
        agg = aggregate(res.rows, metric)
        for variant in ("", SHRINK_PREFIX):
            for method in PREDICTORS:
                entries = [a for a in agg if a["method"] == variant + method]
                if not entries:
                    continue
                fig.add_trace(go.Bar(
                    x=[f"{method} ×{a['scale']:g}" for a in entries], y=[a["mean"] for a in entries],
                    error_y=dict(type="data", array=[a["std"] for a in entries]),
                    name=f"{variant}{method}{tag(info)}", marker_color=method_colour(method),
                    marker_pattern_shape="/" if variant else "", opacity=0.55 if variant else 1.0,
                    hovertemplate="%{x}<br>%{y:.4f} ± %{error_y.array:.4f}<extra>%{fullData.name}</extra>"))
        naive = next((a for a in aggregate(res.rows, metric) if a["method"] == "naive"), None)
        if naive is not None:
            refs.append(naive["mean"])
            fig.add_hline(y=naive["mean"], line=dict(color=method_colour("naive"), dash="dot"),
                          annotation_text=f"naive Θ0{tag(info)}", annotation_position="top left")
    values = [v for trace in fig.data for v in trace.y if v is not None] + refs
    if values:  # zoom on the differences (the naive line is the reference, not zero)
        lo, hi = min(values), max(values)
        pad = max(0.15 * (hi - lo), 0.01)
        fig.update_yaxes(range=[max(lo - pad, 0.0), min(hi + pad, 1.0)])
    fig.update_layout(title=title, barmode="group", yaxis_title=ytitle + " — axis zoomed",
                      xaxis_title="method and scaling factor", height=420,
                      legend_title="bar (hatched: shrinkage control)")
    return fig


def backtest_figure() -> go.Figure | None:
    rows = [{**b, "run": info.name} for info, res in loaded for b in res.backtest
            if b.get("rel_error") is not None]
    if not rows:
        return None
    df = pd.DataFrame(rows).groupby(["run", "method", "group"], as_index=False)["rel_error"].agg(["mean", "std"])
    fig = go.Figure()
    for (run, method), part in df.groupby(["run", "method"], sort=False):
        fig.add_trace(go.Bar(x=part["group"], y=part["mean"], error_y=dict(type="data", array=part["std"].fillna(0)),
                             name=method + (f" · {run}" if len(loaded) > 1 else ""),
                             marker_color=method_colour(method)))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dot"), annotation_text="1.0 = keep Θ1")
    fig.update_layout(title="Backtest: error recovering the hidden Θ0, per parameter group", barmode="group",
                      xaxis_title="parameter group", yaxis_title="relative error ‖θ̂0 − θ0‖ / ‖θ1 − θ0‖ (1 = naive)",
                      height=400)
    return fig


def layer_backtest_figure(info, res) -> go.Figure | None:
    """Backtest error per layer for the first seed of one run (computed here on demand; predictions only, cached)."""
    from pages._common import layer_backtest_rows

    seed = res.seeds[0]
    methods = [m for m in res.config.methods if m != "naive"] + ([OFFICIAL] if res.config.official_known else [])
    rows = layer_backtest_rows(info.id, info.updated, seed, tuple(methods), res.config.official_known)
    for row in rows:
        if row.get("note"):
            st.caption(f"Per-layer backtest of {md(row['method'])}: {md(row['note'])}")
    rows = [r for r in rows if r.get("rel_error") is not None]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    fig = go.Figure()
    for method, part in df.groupby("method", sort=False):
        fig.add_trace(go.Bar(x=part["layer"], y=part["rel_error"], name=method, marker_color=method_colour(method),
                             customdata=part["group"], hovertemplate="%{x} (%{customdata})<br>%{y:.3f}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dot"), annotation_text="1.0 = keep Θ1")
    fig.update_layout(title=f"Backtest per layer ({info.name}, seed {seed})", barmode="group", height=400,
                      xaxis_title="parameter (layer)", yaxis_title="relative error (1 = naive)")
    return fig


def oracle_figure() -> go.Figure | None:
    fig = go.Figure()
    for info, res in loaded:
        for metric, axis in (("dist_to_oracle", "y"), ("cos_to_oracle", "y2")):
            agg = [a for a in aggregate(res.rows, metric) if a["method"].removeprefix(SHRINK_PREFIX) in PREDICTORS]
            if not agg:
                continue
            label = "distance to oracle" if axis == "y" else "cosine to oracle step"
            fig.add_trace(go.Bar(x=[f"{a['method']} ×{a['scale']:g}" for a in agg], y=[a["mean"] for a in agg],
                                 error_y=dict(type="data", array=[a["std"] for a in agg]), name=label + tag(info),
                                 xaxis="x" if axis == "y" else "x2", yaxis=axis))
    if not fig.data:
        return None
    fig.update_layout(title="How close each prediction lands to the real larger-data model (oracle)",
                      grid=dict(rows=1, columns=2, pattern="independent"), height=420,
                      xaxis=dict(title="method and scaling factor"), xaxis2=dict(title="method and scaling factor"),
                      yaxis=dict(title="distance ‖θ̂ − θ_oracle‖ / ‖θ0 − θ_oracle‖ (1 = as far as Θ0)"),
                      yaxis2=dict(title="cosine(θ̂ − θ0, θ_oracle − θ0)", range=[-1, 1]))
    return fig


def table() -> pd.DataFrame:
    out = []
    for info, res in loaded:
        extra = {m: {(a["method"], a["scale"]): a for a in aggregate(res.rows, m)}
                 for m in ("source_acc", "dist_to_oracle", "cos_to_oracle", "norm_ratio")}
        for e in res.summary:
            key = (e["method"], e["scale"])
            row = {"run": info.name, **({"held-out domain": e["domain"]} if "domain" in e else {}),
                   "method": e["method"], "scale": f"×{e['scale']:g}", "seeds": e["n"],
                   "target acc": e["mean"], "± std": e["std"]}
            for name in ("vs_naive", "vs_shrink"):
                d = e.get(name)
                row[name.replace("_", " ")] = d["mean"] if d else None
                row[f"{name.replace('_', ' ')} 95% CI"] = (f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
                                                           if d and d.get("ci95") else "")
            for m, label in (("source_acc", "source acc"), ("norm_ratio", "‖θ̂‖/‖θ0‖"),
                             ("dist_to_oracle", "dist to oracle"), ("cos_to_oracle", "cos to oracle")):
                row[label] = extra[m][key]["mean"] if key in extra[m] else None
            out.append(row)
    return pd.DataFrame(out)


show_figure(paired_bars("target_acc", "Target accuracy after fine-tuning: predictor vs its shrinkage control",
                        "target test accuracy (fraction)"), "compare-target")
show_figure(paired_bars("source_acc", "Source accuracy before fine-tuning (the predicted weights as they are)",
                        "source test accuracy (fraction)"), "compare-source")
fig = backtest_figure()
if fig is not None:
    show_figure(fig, "compare-backtest")
else:
    st.info("No backtest figures in these runs.")
retrodiction_section(loaded)
if st.toggle("Backtest per layer too (first seed of each run; computed on demand)", key="compare-layers"):
    for info, res in loaded:
        layer_fig = layer_backtest_figure(info, res)
        if layer_fig is not None:
            show_figure(layer_fig, f"compare-backtest-layers-{info.id}")
notes = {(b["method"], b["note"]) for _, res in loaded for b in res.backtest if b.get("note")}
for method, note in sorted(notes):
    st.caption(f"Backtest of {md(method)}: {md(note)}")
fig = oracle_figure()
if fig is not None:
    show_figure(fig, "compare-oracle")
else:
    st.info("These runs have no oracle (the real model trained on ×2, ×4 … more data): the quick preset turns "
            "them off because its source pool is too small. The standard preset trains them.")

st.subheader("All numbers")
st.caption("Means over seeds; *vs naive* and *vs shrink* are paired differences of target accuracy on the same seed, "
           "with Student-t 95 % intervals when there are two seeds or more.")
df = table()
st.dataframe(df, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in df.columns
                            if df[c].dtype.kind == "f"})
st.download_button("Download this table (CSV)", df.to_csv(index=False), "know-compare.csv", "text/csv",
                   on_click="ignore")
for info, res in loaded:
    for method, reason in invalid_methods(res.rows).items():
        st.warning(f"{md(run_label(info))}: **{md(method)}** could not predict — {md(reason)}")
    with st.expander(f"Verdicts · {md(run_label(info))}", expanded=len(loaded) == 1):
        for line in res.verdicts:
            st.markdown(f"- {md(line)}")
