"""The Compare page's figures and table, from the loaded runs ``[(info, result), …]``: each predictor beside its
shrinkage control, the backtest (a method that could not be backtested keeps a visible place in the chart, with its
reason, and a caption for a method that could not run), distances to the oracle, and every number formatted
through ``know_core.api.fmt``."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    BASELINE,
    SHRINK_PREFIX,
    aggregate,
    fmt,
    method_colour,
    method_label,
    method_short_label,
    predicted_methods,
)
from screens._figures import legend_below, reference_line
from screens._text import legend_name, md

PREDICTORS = predicted_methods()  # every registered predictor but naive, then known-official


def _tag(loaded: list) -> callable:
    return (lambda info: f" · {legend_name(info)}") if len(loaded) > 1 else (lambda info: "")


def _error_bars(entries: list[dict]) -> dict:
    """One standard deviation over seeds — none at all where a bar has one seed (its std means nothing)."""
    return dict(type="data", array=[a["std"] if a["n"] > 1 else None for a in entries],
                visible=any(a["n"] > 1 for a in entries))



RUN_DASHES = ("dot", "dash", "dashdot", "longdash")


def paired_bars(loaded: list, metric: str, title: str, ytitle: str) -> go.Figure:
    """Per method and scale: the predictor's bar beside its shrinkage control's, error bars over seeds."""
    fig, refs, tag = go.Figure(), [], _tag(loaded)
    for i, (info, res) in enumerate(loaded):
        agg = aggregate(res.rows, metric)
        for variant in ("", SHRINK_PREFIX):
            for method in PREDICTORS:
                entries = [a for a in agg if a["method"] == variant + method]
                if not entries:
                    continue
                fig.add_trace(go.Bar(
                    x=[f"{method_short_label(method)} {fmt.scale(a['scale'])}" for a in entries],
                    y=[a["mean"] for a in entries], error_y=_error_bars(entries),
                    name=f"{method_label(variant + method)}{tag(info)}",
                    marker_color=method_colour(method), marker_pattern_shape="/" if variant else "",
                    opacity=0.55 if variant else 1.0,
                    customdata=[fmt.mean_std(a["mean"], a["std"], a["n"]) for a in entries],
                    hovertemplate="%{x}<br>%{customdata}<extra>%{fullData.name}</extra>"))
        naive = next((a for a in agg if a["method"] == BASELINE), None)
        if naive is not None:
            refs.append(naive["mean"])
            reference_line(fig, naive["mean"], f"{method_label(BASELINE)}{tag(info)}", method_colour(BASELINE),
                           dash=RUN_DASHES[i % len(RUN_DASHES)])  # each run's naive line its own, named in the legend
    values = [v for trace in fig.data for v in trace.y if v is not None] + refs
    if values:  # zoom on the differences (the naive line is the reference, not zero)
        lo, hi = min(values), max(values)
        pad = max(0.15 * (hi - lo), 0.01)
        fig.update_yaxes(range=[max(lo - pad, 0.0), min(hi + pad, 1.0)])
    fig.update_layout(title=title, barmode="group", yaxis_title=ytitle + " — axis zoomed",
                      xaxis_title="method and scaling factor", height=440 + 36 * max(len(fig.data) - 6, 0),
                      legend_title="bar (hatched: shrinkage control)")
    return legend_below(fig)


def backtest_figure(loaded: list) -> go.Figure | None:
    """Relative error recovering the hidden Θ0 per method and group; a method that could not be backtested (KNOWN on
    a film too short for its window) gets an empty legend entry and a note inside the chart saying why."""
    multi = len(loaded) > 1
    rows = [{**b, "run": legend_name(info)} for info, res in loaded for b in res.backtest
            if b.get("rel_error") is not None]
    notes = {(legend_name(info), b["method"]): b["note"] for info, res in loaded for b in res.backtest
             if b.get("note")}
    if not rows and not notes:
        return None
    fig = go.Figure()
    groups: list[str] = []
    if rows:
        df = pd.DataFrame(rows).groupby(["run", "method", "group"], as_index=False)["rel_error"].agg(
            ["mean", "std", "count"])
        groups = list(dict.fromkeys(df["group"]))
        for (run, method), part in df.groupby(["run", "method"], sort=False):
            fig.add_trace(go.Bar(x=part["group"], y=part["mean"],
                                 name=method_label(method) + (f" · {run}" if multi else ""),
                                 error_y=dict(type="data", array=part["std"].where(part["count"] > 1).tolist(),
                                              visible=bool((part["count"] > 1).any())),
                                 marker_color=method_colour(method),
                                 hovertemplate="%{x}<br>%{y:.3g}<extra>%{fullData.name}</extra>"))
    lines = []
    for (run, method), note in sorted(notes.items()):
        label = method_label(method)
        if any(t.name == label + (f" · {run}" if multi else "") for t in fig.data):
            continue  # backtested on some seeds: the bar stands
        name = f"{label}{f' · {run}' if multi else ''} — not backtested"
        fig.add_trace(go.Bar(x=groups or [label], y=[None] * max(len(groups), 1), name=name,
                             marker_color=method_colour(method), hoverinfo="skip"))
        lines.append(f"<b>{label}</b>{f' ({run})' if multi else ''} is not in this chart: {note}")
    for i, text in enumerate(lines):  # above the plotting area, under the title: never on a bar or the 1.0 line
        fig.add_annotation(text=text, xref="paper", yref="paper", x=0.0, y=1.03, yshift=22 * i, showarrow=False,
                           xanchor="left", yanchor="bottom", align="left", font=dict(size=12))
    if rows:
        reference_line(fig, 1.0, "1.0 = keep Θ1")
    fig.update_layout(title="Backtest: error recovering the hidden Θ0, per parameter group", barmode="group",
                      xaxis_title="parameter group", yaxis_title="relative error ‖θ̂0 − θ0‖ / ‖θ1 − θ0‖ (1 = naive)",
                      height=420 + 22 * len(lines), margin=dict(t=80 + 22 * len(lines)))
    return legend_below(fig)


def oracle_figure(loaded: list) -> go.Figure | None:
    fig, tag = go.Figure(), _tag(loaded)
    for info, res in loaded:
        for metric, axis in (("dist_to_oracle", "y"), ("cos_to_oracle", "y2")):
            agg = [a for a in aggregate(res.rows, metric) if a["method"].removeprefix(SHRINK_PREFIX) in PREDICTORS]
            if not agg:
                continue
            label = "distance to oracle" if axis == "y" else "cosine to oracle step"
            fig.add_trace(go.Bar(x=[f"{method_short_label(a['method'])} {fmt.scale(a['scale'])}" for a in agg],
                                 y=[a["mean"] for a in agg],
                                 error_y=_error_bars(agg), name=label + tag(info),
                                 xaxis="x" if axis == "y" else "x2", yaxis=axis))
    if not fig.data:
        return None
    fig.update_layout(title="How close each prediction lands to the real larger-data model (oracle)",
                      grid=dict(rows=1, columns=2, pattern="independent"), height=460,
                      xaxis=dict(title="method and scaling factor"), xaxis2=dict(title="method and scaling factor"),
                      yaxis=dict(title="distance ‖θ̂ − θ_oracle‖ / ‖θ0 − θ_oracle‖ (1 = as far as Θ0)"),
                      yaxis2=dict(title="cosine(θ̂ − θ0, θ_oracle − θ0)", range=[-1, 1]))
    return legend_below(fig)


def numbers_table(loaded: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(what the page shows: every figure formatted, ``—`` where missing, no ``±`` for one seed; the same numbers
    unformatted, for the CSV download)."""
    shown, raw = [], []
    for info, res in loaded:
        extra = {m: {(a["method"], a["scale"]): a for a in aggregate(res.rows, m)}
                 for m in ("source_acc", "dist_to_oracle", "cos_to_oracle", "norm_ratio")}
        for e in res.summary:
            key = (e["method"], e["scale"])
            head = {"run": info.name, **({"held-out domain": e["domain"]} if "domain" in e else {}),
                    "method": e["method"], "scale": fmt.scale(e["scale"]), "seeds": e["n"]}
            row = dict(head, method=method_label(e["method"]))  # the page shows labels; the CSV keeps the keys
            row["target acc"], out = fmt.mean_std(e["mean"], e["std"], e["n"]), dict(head)
            out.update({"target acc": e["mean"], "± std": e["std"] if e["n"] > 1 else None})
            for name in ("vs_naive", "vs_shrink"):
                d, label = e.get(name), name.replace("_", " ")
                ci = d.get("ci95") if d else None
                row[label] = fmt.signed(d["mean"]) if d else fmt.MISSING
                row[f"{label} 95% CI"] = fmt.interval(*(ci or (None, None)))
                out[label], out[f"{label} 95% CI"] = (d["mean"] if d else None), (list(ci) if ci else None)
            for m, label in (("source_acc", "source acc"), ("norm_ratio", "‖θ̂‖/‖θ0‖"),
                             ("dist_to_oracle", "dist to oracle"), ("cos_to_oracle", "cos to oracle")):
                value = extra[m][key]["mean"] if key in extra[m] else None
                row[label], out[label] = fmt.num(value), value
            shown.append(row)
            raw.append(out)
    return pd.DataFrame(shown), pd.DataFrame(raw)


def scored_backtest_rows(rows: list[dict], what: str) -> list[dict]:
    """The backtest rows that have a figure; a method that could not run gets one caption (``what`` of <label>: why)."""
    for row in rows:
        if row.get("note"):
            st.caption(f"{what} of {md(method_label(row['method']))}: {md(row['note'])}")
    return [r for r in rows if r.get("rel_error") is not None]


def layer_backtest_bars(rows: pd.DataFrame, title: str) -> go.Figure:
    """Backtest relative error per layer, one bar per method (``rows``: the per-layer backtest rows), with the
    keep-Θ1 line at 1."""
    fig = go.Figure()
    for method, part in rows.groupby("method", sort=False):
        fig.add_trace(go.Bar(x=part["layer"], y=part["rel_error"], name=method_label(method),
                             marker_color=method_colour(method),
                             customdata=part["group"], hovertemplate="%{x} (%{customdata})<br>%{y:.3g}<extra></extra>"))
    reference_line(fig, 1.0, "1.0 = keep Θ1")
    fig.update_layout(title=title, barmode="group", height=420, xaxis_title="parameter (layer)",
                      yaxis_title="relative error (1 = naive)")
    return fig
