"""Imported films (runs of kind ``imported``: the user's own checkpoints) on the Trajectory, Compare and Runs pages
(the Runs page's "Import a film" form is :mod:`screens._importform`). An imported network has no source loss or
accuracy unless the import ran an ``--eval`` hook: the pages say so in place of the curve. It has no oracles either
(nobody trained it on more data here), so what there is to see is the film, the predictions and the backtest."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from know_core.api import (
    BASELINE,
    FORMATS,
    ImportedRun,
    KnowError,
    available_predictors,
    backtest_headline,
    curves_figure,
    export_imported,
    export_imported_zip,
    film_backtest,
    fmt,
    layers,
    load_imported,
    method_colour,
    method_label,
    method_order,
    natural_key,
    pca_view,
)
from screens._common import list_runs, md, runs_dir, show_figure
from screens._compare_figs import layer_backtest_bars, scored_backtest_rows
from screens._predictform import predict_form
from screens._reads import damaged_predictions_notice

NO_ACCURACY = ("No source accuracy or loss for this imported network: the product did not train it and has no data "
               "to test it on, so there is no curve to draw. Import it again with `--eval module:function` (your "
               "function taking a state dict and returning {\"loss\": …, \"acc\": …}) to fill them in.")
NO_ORACLE = "No oracles: nobody trained this network on more data here, so the predictions have no real target."


def imported_runs() -> list:
    """Finished imported runs (their files are checked when one is opened)."""
    return list_runs(kind="imported", status="done")


@st.cache_resource(show_spinner="Reading the imported film…", max_entries=4)
def _load(root: str, run_id: str, updated: float) -> ImportedRun:
    return load_imported(root, run_id)


def load(info) -> ImportedRun | None:
    try:
        run = _load(runs_dir(), info.id, info.updated)
    except KnowError as exc:
        st.error(f"Run {md(info.name)} is damaged: {md(exc)}")
        return None
    damaged_predictions_notice(run.weights.damaged)
    return run


def describe(run: ImportedRun) -> str:
    cfg = run.config
    methods = ", ".join(f"{m} (×{(1 / cfg.r) ** 1:g} … ×{(1 / cfg.r) ** k:g})" for m, k in run.steps.items())
    return (f"{cfg.stages} {cfg.format} checkpoints imported as a {cfg.kind} film (r = {fmt.num(cfg.r)}); "
            f"predictions: {methods or 'none yet (Predict, below)'}")


def predict_section(run: ImportedRun, where: str) -> None:
    """The Predict form for this film (a background job; the page shows the new method once it is stored)."""
    predict_form(run.run_id, run.config.stages, run.r, where, has_embed="embed" in run.weights.groups.values())


def metrics_figure(run: ImportedRun) -> go.Figure:
    """The --eval hook's source loss (left) and accuracy (right) along the film."""
    stages = [m["stage"] for m in run.metrics]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("source loss (your --eval)", "accuracy (your --eval)"))
    for col, key in ((1, "source_loss"), (2, "source_acc")):
        fig.add_trace(go.Scatter(x=stages, y=[m[key] for m in run.metrics], mode="lines+markers",
                                 name=f"imported film Θ0 → Θ{fmt.subscript(len(stages) - 1)}",
                                 line=dict(color=method_colour("trajectory")), showlegend=col == 1), 1, col)
    fig.update_xaxes(title_text="stage s (Θ0 = the most-trained network)", dtick=1)
    fig.update_layout(title="Imported film: loss and accuracy from the --eval hook", height=380)
    return fig


def accuracy_or_note(run: ImportedRun, key: str) -> None:
    if run.metrics is None:
        st.info(NO_ACCURACY)
    else:
        show_figure(metrics_figure(run), key)


def pca_figure(run: ImportedRun, layer: str | None) -> tuple[go.Figure, list[dict]]:
    points, pca = pca_view(run.weights, run.r, layer, k=2)
    explained = pca.explained + [0.0] * (2 - len(pca.explained))
    film = sorted([p for p in points if p["kind"] == "trajectory"], key=lambda p: -p["stage"])
    theta0 = film[-1]
    fig = go.Figure()
    last = f"Θ{fmt.subscript(len(film) - 1)}"

    def text(p: dict) -> str:
        acc = "no source accuracy" if p["source_acc"] is None else f"source accuracy {p['source_acc']:.4f}"
        return f"<b>{p['label']}</b><br>{acc}"

    fig.add_trace(go.Scatter(x=[p["pc1"] for p in film], y=[p["pc2"] for p in film], mode="lines+markers",
                             name=f"imported film ({last} → Θ0)", line=dict(color=method_colour("trajectory"), width=3),
                             text=[text(p) for p in film], hovertemplate="%{text}<extra></extra>"))
    methods = sorted({p["method"] for p in points if p["kind"] == "prediction"}, key=method_order)
    for method in methods:
        pts = [theta0, *sorted((p for p in points if p["method"] == method), key=lambda p: p["scale"])]
        fig.add_trace(go.Scatter(x=[p["pc1"] for p in pts], y=[p["pc2"] for p in pts], mode="lines+markers",
                                 name=method_label(method), line=dict(color=method_colour(method), width=2),
                                 marker=dict(symbol="diamond", size=10), text=[text(p) for p in pts],
                                 hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title="Imported film and predictions in one PCA plane",
                      xaxis_title=f"PC1 ({explained[0]:.0%} of variance)",
                      yaxis_title=f"PC2 ({explained[1]:.0%} of variance)", height=560,
                      legend=dict(orientation="h", x=0, y=-0.14, yanchor="top"))
    return fig, points


def trajectory_view(info, headline) -> None:
    """The Trajectory page for an imported run: PCA film + predictions, per-weight curves, loss/accuracy or a note."""
    run = load(info)
    if run is None:
        return
    headline.subheader(md(f"{info.name}: an imported film of {run.config.stages} checkpoints"), anchor=False)
    st.caption(md(describe(run)))
    with st.expander("Predict", icon=":material/auto_graph:", expanded=not run.steps):
        predict_section(run, "traj-imp")
    by_layer = layers(run.weights.groups)
    options = ["all", *sorted(by_layer, key=natural_key)]
    left, right = st.columns(2)
    layer_name = left.selectbox("Layer", options, key="traj-imp-layer",
                                format_func=lambda L: "all predicted layers" if L == "all" else L)
    view = right.selectbox("View", ["2-D", "Per-weight curves"], key="traj-imp-view")
    layer = None if layer_name == "all" else layer_name
    if view == "2-D":
        fig, points = pca_figure(run, layer)
        show_figure(fig, "trajectory-imported-pca")
        st.caption(f"PCA over {len(points)} networks. {NO_ORACLE}")
    else:
        n = st.slider("Weights to sample", 3, 12, 6, step=3, key="traj-imp-nweights")
        scales = sorted({s for by in run.weights.predictions.values() for s in by})
        show_figure(curves_figure(run.weights, run.r, n, layer, 0, scales), "trajectory-imported-weights")
    st.subheader("Loss and accuracy along the film")
    accuracy_or_note(run, "trajectory-imported-metrics")


def compare_view(info) -> str | None:
    """The Compare page for an imported run: the backtest (hide Θ0, predict it back) per group and per layer. Returns
    the headline sentence for the page's answer (None when the run cannot be read: the error is on the page)."""
    run = load(info)
    if run is None:
        return None
    st.subheader(md(f"{info.name} (imported)"), anchor=False)
    st.caption(md(describe(run)) + ". " + NO_ORACLE + " Source and target accuracy: "
               + ("from your --eval hook, on the Trajectory page." if run.has_accuracy else "none (no --eval hook)."))
    if run.config.stages < 3:
        line = ("A backtest hides Θ0 and predicts it back from the later stages: it needs at least 3 checkpoints; "
                f"this film has {run.config.stages}.")
        st.info(line)
        return line
    return backtest_headline(backtest_section(run.weights, info, "imported"))


def backtest_section(weights, info, what: str) -> list[dict]:
    """The backtest of one stored film (hide Θ0, predict it back from the later stages) for the methods picked here:
    a table per group and a bar chart per layer. Returns the rows (for the page's headline); [] when none ran."""
    methods = [m for m in available_predictors() if m != BASELINE]
    chosen = st.multiselect("Methods to backtest", methods, default=[m for m in ("taskvector", "expfit")
                                                                        if m in methods], key=f"cmp-imp-{info.id}",
                            format_func=method_label)
    if not chosen:
        return []
    with st.spinner("Backtesting…"):
        rows = film_backtest(weights, chosen)
    shown = scored_backtest_rows(rows, "Backtest")
    if not shown:
        return rows
    df = pd.DataFrame(shown)
    groups = df[df["level"] == "group"][["method", "group", "weights", "rel_error", "cosine"]]
    st.markdown("**Backtest per group** (relative error ‖Θ̂0 − Θ0‖ / ‖Θ1 − Θ0‖: 1 = no better than keeping Θ1)")
    st.dataframe(fmt.labelled(groups.assign(method=groups["method"].map(method_label))), hide_index=True,
                 width="stretch")
    fig = layer_backtest_bars(df[df["level"] == "layer"], f"Backtest per layer ({info.name}, {what})")
    show_figure(fig, f"compare-{what.replace(' ', '-')}-layers-{info.id}")
    return rows


def runs_view(info) -> None:
    """The Runs page for an imported run: its sources, groups, loss/accuracy or a note, and the export."""
    run = load(info)
    if run is None:
        return
    st.caption(md(describe(run)))
    st.subheader("Sources (Θ0 first)")
    st.dataframe(pd.DataFrame([{"stage": f"Θ{i}", "path": s["path"], "format": s["format"], "step": s.get("step"),
                                "files": ", ".join(f"{n} ({h[:12]})" for n, h in (s.get("sha256") or {}).items())}
                               for i, s in enumerate(run.layout["sources"])]),
                 hide_index=True, width="stretch")
    st.subheader("Parameter groups")
    st.dataframe(pd.DataFrame(run.table), hide_index=True, width="stretch")
    st.subheader("Loss and accuracy")
    accuracy_or_note(run, "runs-imported-metrics")
    st.subheader("Predict")
    predict_section(run, "runs-imp")
    st.subheader("Export predicted weights")
    if not run.steps:
        st.info("Nothing predicted yet: predict above (or with `predict --run`), then export here (or with `export`).")
        return
    st.caption("In the layout and key names of the source files (an HF folder loads with from_pretrained, a state dict "
               "with load_state_dict(strict=True)), with know-export.json saying what it is.")
    choices = [(m, (1 / run.r) ** k) for m, steps in run.steps.items() for k in range(1, steps + 1)]
    c1, c2 = st.columns(2)
    method, scale = c1.selectbox("Prediction", choices, key="runs-imp-pred",
                                 format_func=lambda c: f"{method_label(c[0])} {fmt.scale(c[1])}")
    form = c2.selectbox("Format", FORMATS, index=FORMATS.index(run.config.format) if run.config.format in FORMATS
                        else 0, key="runs-imp-format")
    c3, c4 = st.columns([3, 1])
    out = c3.text_input("Write to a new folder on the server", key="runs-imp-out", placeholder="/path/to/new/folder")
    with c4:
        st.write("")
        if st.button("Export", key="runs-imp-export", icon=":material/save:"):
            try:
                folder, sidecar = export_imported(runs_dir(), run.run_id, method, f"{scale:g}", out, form)
            except KnowError as exc:
                st.error(md(exc))
            else:
                st.success(f"Wrote {md(method)} {fmt.scale(scale)} as {sidecar['format']} to {md(folder)}.")
    st.download_button("Download as a zip", data=lambda: export_imported_zip(runs_dir(), run.run_id, method,
                                                                             f"{scale:g}", form),
                       file_name=f"{run.run_id}-{method}-x{scale:g}-{form}.zip", mime="application/zip",
                       icon=":material/download:", on_click="ignore", key="runs-imp-zip")
