"""Trajectory page: the forgetting film and every method's predictions in one PCA picture of weight space."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    KnowError,
    continuation_headline,
    curves_figure,
    film_frames,
    film_headline,
    fmt,
    layers,
    method_colour,
    method_label,
    method_order,
    natural_key,
    pca_view,
    protocol_line,
)
from screens._common import (
    continuation,
    damaged_notice,
    film_runs,
    finished_or_welcome,
    load_film,
    md,
    pick_run,
    runs_dir,
    seed_weights,
    show_figure,
    sync_url,
    url_value,
)
from screens._film import forgetting_panel
from screens._imported import imported_runs
from screens._imported import trajectory_view as imported_view
from screens._landscape import landscape
from screens._predictform import predict_form
from screens._presentation import prose

PAGE = {"title": "Trajectory", "icon": ":material/scatter_plot:", "order": 20}  # read by screens._routing unrun

VIEWS = ["2-D", "3-D", "Animation", "Per-weight curves"]
SYMBOLS = {"trajectory": "circle", "prediction": "diamond", "oracle": "star", "warm": "star", "control": "x"}
WARM_SERIES = "warm oracles (Θ0 → Θ₋₁ → …: the real continuation)"
CONTROL_SERIES = "control film (Θ0 → C₁ → …: same data, more training)"
# Legend in rows under the plot, colour bar on the right with its own margin: the two never overlap, and the legend's
# long names never take width from the plot (a legend on the right squeezed it, most visibly while playing).
LEGEND_BELOW = dict(orientation="h", x=0, xanchor="left", y=-0.14, yanchor="top")
COLORBAR = dict(title="source acc.", x=1.02, xanchor="left", thickness=14, len=0.75)

st.title("Trajectory")
headline = st.container()  # the page's one-sentence answer, filled once the run is read
prose(
    "Every point is a whole network, squeezed from thousands of weights to 2 or 3 numbers by PCA (one basis fitted "
    "on all points, so distances compare like with like). The **trajectory** runs from the most-forgotten stage "
    "to Θ0; each **method** continues it past Θ0 to its ×2, ×4, ×8 predictions; the **oracle** (when the run "
    "has one) is where the real larger-data network sits. The **warm oracles** continue the film the other way on "
    "real supersets of D0 (Θ₋₁, Θ₋₂ …: what each prediction claims to be), and the **control film** trains Θ0 "
    "further on D0 itself, so the drift any further training causes is visible. Colour is source-task accuracy.")

runs = film_runs() + imported_runs()  # experiments, forget runs (film, warm oracles, control film) and imports
damaged_notice(runs)  # a run asked for by the URL but left out, damaged: say so rather than show another
finished_or_welcome(runs)
left, mid, right, far = st.columns([3, 1, 2, 2])
with left:
    info = pick_run(runs, "traj-run")
if info.kind == "imported":  # the user's own checkpoints: film, predictions, curves; no oracles, no accuracy unless
    sync_url(run=info.id)    # the import ran an --eval hook
    imported_view(info, headline)
    st.stop()
res = load_film(info)
if res is None:
    st.stop()
r = res.r
sentence = film_headline(res)
st.caption(protocol_line(res.config))
seeds = res.seeds
with mid:
    if "traj-seed" not in st.session_state or st.session_state["traj-seed"] not in seeds:
        st.session_state["traj-seed"] = url_value("seed", seeds[0], seeds, int)
    seed = st.selectbox("Seed", seeds, key="traj-seed")
try:
    sw = seed_weights(runs_dir(), info.id, info.updated, seed)
except KnowError as exc:
    headline.subheader(md(sentence), anchor=False)
    st.error(f"This run's weights cannot be read: {md(exc)}")
    st.stop()
if info.kind == "forget":  # its stored predictions against the warm oracles: the answer a forget run can give
    nearest = continuation_headline(continuation(runs_dir(), info.id, info.updated, seed, r, None))
    sentence += f" {nearest}" if nearest else ""
headline.subheader(md(sentence), anchor=False)
if info.kind == "forget":  # predictions are stored into the run (a background job); they appear beside the warm oracles
    with st.expander("Predict", icon=":material/auto_graph:", expanded=not sw.predictions):
        predict_form(info.id, len(sw.stages), r, "traj-forget", has_embed="embed" in sw.groups.values(),
                     has_control=len(sw.control) >= len(sw.stages) - 1)
by_layer = layers(sw.groups)
layer_options = ["all", *sorted(by_layer, key=natural_key)]
with right:
    if "traj-layer" not in st.session_state or st.session_state["traj-layer"] not in layer_options:
        st.session_state["traj-layer"] = url_value("layer", "all", layer_options)
    layer_name = st.selectbox(
        "Layer", layer_options, key="traj-layer",
        format_func=lambda L: "all predicted layers" if L == "all" else
        f"{L} ({sw.groups[by_layer[L][-1]]}, {sum(sw.stages[0][p].numel() for p in by_layer[L]):,} weights)")
with far:
    if "traj-view" not in st.session_state:
        st.session_state["traj-view"] = url_value("view", "2-D", VIEWS)
    view = st.selectbox("View", VIEWS, key="traj-view")
layer = None if layer_name == "all" else layer_name
sync_url(run=info.id, seed=seed, layer=layer, view=view)

points, pca = pca_view(sw, r, layer, k=3)
explained = pca.explained + [0.0] * (3 - len(pca.explained))
traj = sorted([p for p in points if p["kind"] == "trajectory"], key=lambda p: -p["stage"])
theta0 = next(p for p in points if p["kind"] == "trajectory" and p["stage"] == 0)
last = f"Θ{fmt.subscript(len(traj) - 1)}"  # the most-forgotten stage, Θ_{S−1}, as plain text
series = {f"trajectory ({last} → Θ0)": traj}
kinds = {f"trajectory ({last} → Θ0)": "trajectory"}
method_of: dict[str, str] = {}  # legend name (the method's label) -> method, for its colour and dash
for method in sorted(dict.fromkeys(p["method"] for p in points if p["kind"] in ("prediction", "oracle")),
                     key=method_order):
    name = method_label(method)
    series[name] = [theta0, *sorted((p for p in points if p["method"] == method), key=lambda p: p["scale"])]
    kinds[name], method_of[name] = "oracle" if method == "oracle" else "prediction", method
for name, kind in ((WARM_SERIES, "warm"), (CONTROL_SERIES, "control")):
    extra = sorted((p for p in points if p["kind"] == kind), key=lambda p: abs(p["stage"]))
    if extra:
        series[name], kinds[name] = [theta0, *extra], kind
# The run's scales, and those of any prediction stored past them (a forget run's predictions go as far as asked)
scales = sorted({round(s, 9) for s in [*res.config.scales, *(p["scale"] for p in points if p["kind"] == "prediction")]})
accs = [p["source_acc"] for p in points if p["source_acc"] is not None]
color_axis = dict(colorscale="Viridis", cmin=min(accs, default=0), cmax=max(accs, default=1),
                  colorbar=COLORBAR)


def hover(p: dict) -> str:
    where = (f"stage {p['stage']}" if p["kind"] == "trajectory"
             else f"×{p['scale']:g} predicted by {method_label(p['method'])}")
    if p["kind"] == "oracle":
        where = f"×{p['scale']:g}: really trained on more data (cold, from scratch)"
    elif p["kind"] == "warm":
        where = f"×{p['scale']:g}: the film continued on a real superset of D0"
    elif p["kind"] == "control":
        where = "trained further on D0 itself: the drift of more training"
    acc = "n/a" if p["source_acc"] is None else f"{p['source_acc']:.4f}"
    size = "" if p["data_size"] is None else f"<br>data |D| = {p['data_size']:,} images ({p['scale']:g}×|D0|)"
    return f"<b>{p['label']}</b><br>{where}{size}<br>source accuracy {acc}"


def marker(pts: list[dict], kind: str) -> dict:
    return dict(color=[p["source_acc"] if p["source_acc"] is not None else float("nan") for p in pts],
                coloraxis="coloraxis", size=11 if kind != "trajectory" else 9, symbol=SYMBOLS[kind],
                line=dict(width=1, color="black"))


def kind_of(name: str) -> str:
    return kinds[name]


def color_of(name: str) -> str | None:
    roles = {"trajectory": "trajectory", "warm": "oracle-warm", "control": "control"}
    key = roles.get(kinds[name], method_of.get(name))
    return method_colour(key)


def dash_of(name: str) -> str:
    return {"oracle": "dot", "control": "dash"}.get(kinds[name], "dashdot" if method_of.get(name, "").endswith("+dc")
                                                    else "solid")


def axis_title(i: int) -> str:
    return f"PC{i + 1} ({explained[i]:.0%} of variance; weight-space units)"


def pca_2d(contours: dict | None = None, metric: str = "accuracy") -> go.Figure:
    fig = go.Figure()
    if contours is not None:
        fig.add_trace(go.Contour(x=contours["pc1"], y=contours["pc2"], z=contours[metric], name=f"source {metric}",
                                 colorscale="Greys" if metric == "accuracy" else "Greys_r", opacity=0.45,
                                 contours=dict(showlabels=True), showscale=False, hoverinfo="skip"))
    for name, pts in series.items():
        kind = kind_of(name)
        fig.add_trace(go.Scatter(
            x=[p["pc1"] for p in pts], y=[p["pc2"] for p in pts], mode="lines+markers", name=name,
            line=dict(color=color_of(name), width=3 if kind in ("trajectory", "warm") else 2, dash=dash_of(name)),
            marker=marker(pts, kind), text=[hover(p) for p in pts], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title="Forgetting trajectory and predictions in one PCA plane", xaxis_title=axis_title(0),
                      yaxis_title=axis_title(1), coloraxis=color_axis, height=600, legend=LEGEND_BELOW,
                      margin=dict(r=90))
    return fig


def pca_3d() -> go.Figure:
    fig = go.Figure()
    for name, pts in series.items():
        kind = kind_of(name)
        mk = marker(pts, kind)
        mk["symbol"] = {"trajectory": "circle", "prediction": "diamond", "oracle": "cross", "warm": "cross",
                        "control": "x"}[kind]
        mk["size"] = 6
        fig.add_trace(go.Scatter3d(
            x=[p["pc1"] for p in pts], y=[p["pc2"] for p in pts], z=[p["pc3"] for p in pts], mode="lines+markers",
            name=name, line=dict(color=color_of(name), width=4, dash=dash_of(name)),
            marker=mk, text=[hover(p) for p in pts], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title="Forgetting trajectory and predictions in 3-D PCA space", coloraxis=color_axis,
                      height=660, legend={**LEGEND_BELOW, "y": 0}, margin=dict(r=90, b=130),
                      scene=dict(xaxis_title=f"PC1 ({explained[0]:.0%})", yaxis_title=f"PC2 ({explained[1]:.0%})",
                                 zaxis_title=f"PC3 ({explained[2]:.0%})"))
    return fig


def animation() -> go.Figure:
    """Frame by frame: the trajectory from the most-forgotten stage to Θ0, then one frame per scale the run predicted
    (×2, ×4 … up to its largest: each method's prediction, the oracles and warm oracles at that scale, the control
    film's C_k for the same k steps)."""
    frames = film_frames(len(traj), scales, r)
    film_name = next(iter(series))

    def shown(name: str, frame: dict) -> list[dict]:
        pts = series[name]
        if name == film_name:
            return pts[:frame["shown"]]
        if frame["k"] == 0:
            return []
        if kind_of(name) == "control":
            return pts[:1 + frame["k"]]  # Θ0, C_1 … C_k
        return [pts[0], *(p for p in pts[1:] if p["scale"] <= frame["scale"] * (1 + 1e-9))]

    def traces(frame: dict) -> list[go.Scatter]:
        out = []
        for name in series:
            pts = shown(name, frame)
            # A series not on screen yet keeps one empty point, so its legend entry is there from the first frame:
            # a legend that grows while playing re-lays the figure out (it squeezed the plot).
            xs, ys = ([p["pc1"] for p in pts], [p["pc2"] for p in pts]) if pts else ([None], [None])
            out.append(go.Scatter(x=xs, y=ys, mode="lines+markers",
                                  name=name, marker=marker(pts, kind_of(name)), text=[hover(p) for p in pts],
                                  hovertemplate="%{text}<extra></extra>",
                                  line=dict(color=color_of(name), dash=dash_of(name))))
        return out

    xs, ys = [p["pc1"] for p in points], [p["pc2"] for p in points]
    pad = lambda v: 0.08 * (max(v) - min(v) or 1)  # noqa: E731
    largest = fmt.scale(max(scales, default=1))
    fig = go.Figure(data=traces(frames[0]),
                    frames=[go.Frame(data=traces(f), name=str(i)) for i, f in enumerate(frames)])
    # Buttons and slider above the plot, legend below, colour bar right: playing never moves or covers anything.
    fig.update_layout(
        title=dict(text=f"Animation: forgetting ({last} → Θ0), then retrodiction (×2 … {largest})", y=0.98),
        coloraxis=color_axis, height=640, legend=LEGEND_BELOW, showlegend=True, margin=dict(t=150, r=90),
        xaxis=dict(title=axis_title(0), range=[min(xs) - pad(xs), max(xs) + pad(xs)]),
        yaxis=dict(title=axis_title(1), range=[min(ys) - pad(ys), max(ys) + pad(ys)]),
        updatemenus=[dict(type="buttons", x=0, xanchor="left", y=1.02, yanchor="bottom", direction="left", buttons=[
            dict(label="▶ play", method="animate", args=[None, dict(frame=dict(duration=700, redraw=True),
                                                                  fromcurrent=True)]),
            dict(label="❚❚ pause", method="animate", args=[[None], dict(mode="immediate",
                                                                        frame=dict(duration=0, redraw=False))])])],
        sliders=[dict(active=0, x=0.32, xanchor="left", len=0.68, y=1.02, yanchor="bottom", pad=dict(t=0, b=10),
                      steps=[dict(label=f["label"], method="animate",
                                  args=[[str(i)], dict(mode="immediate", frame=dict(redraw=True))])
                             for i, f in enumerate(frames)])])
    return fig


# Pixel widths: the method column holds a label ("shrinkage control of KNOWN + drift correction", 45 characters at
# about 7 px), the numbers sit beside it; together they fit a projector's 1024-px page beside the sidebar.
SIDE_WIDTHS = {"method": 320, "scale": 50, "cosine": 70, fmt.label("rel_error"): 110}

# The figure takes the page's width and the scores sit below it: beside it, a projector's 1024 px cut the table.
plot_col, side = st.container(), st.container()
with side:
    st.markdown("**Does each prediction point along the real continuation?**")
    scores = continuation(runs_dir(), info.id, info.updated, seed, r, layer)
    if scores:
        st.dataframe(pd.DataFrame([{"method": method_label(s["method"]), "scale": fmt.scale(s["scale"]),
                                    "cosine": s["cosine"], fmt.label("rel_error"): s["rel_error"]} for s in scores]),
                     hide_index=True, width="stretch", key="traj-continuation",
                     column_config={c: st.column_config.NumberColumn(c, format="%.2f", width=w)
                                    if c in ("cosine", fmt.label("rel_error")) else st.column_config.Column(c, width=w)
                                    for c, w in SIDE_WIDTHS.items()})
        st.caption("Against the warm oracle Θ₋ₖ, over the chosen parameters in full weight space (not this "
                   "projection): cosine of (Θ̂ − Θ0) with (Θ₋ₖ − Θ0), 1 = same direction, below 0 = pointing "
                   "away; relative error ‖Θ̂ − Θ₋ₖ‖ / ‖Θ0 − Θ₋ₖ‖, 1 = no better than keeping Θ0. The *control "
                   "film* is Cₖ, Θ0 trained on D0 itself: the drift every film shares.")
    else:
        st.info("This run has no warm oracles (older runs, oracles off, or a pool too small for |D0|/r), so there is "
                "no real continuation to compare the predictions with.")
    st.caption(f"PCA over {len(points)} networks; the first three components explain "
               f"{sum(pca.explained[:3]):.0%} of their spread.")

with plot_col:
    if view == "2-D":
        contours = landscape(info.id, seed, layer) if info.kind == "experiment" else None
        show_figure(pca_2d(contours, st.session_state.get("traj-metric", "accuracy")), "trajectory-pca2d")
    elif view == "3-D":
        show_figure(pca_3d(), "trajectory-pca3d")
    elif view == "Animation":
        show_figure(animation(), "trajectory-animation")
    else:
        n = st.slider("Weights to sample", 3, 12, 6, step=3, key="traj-nweights")
        show_figure(curves_figure(sw, r, n, layer, seed, scales), "trajectory-weights")

if info.kind == "forget":
    st.caption(f"A forget run ({md(res.config.source.model)} on {md(res.config.source.dataset)}): the film, its warm "
               "oracles and control film, and the predictions stored in it (Predict, above, or `predict --run`), "
               "each beside the warm oracle at its scale; cold oracles and the loss landscape are an experiment "
               "run's.")
st.subheader("Forgetting panel")
forgetting_panel(res.trajectory(seed), r, "trajectory")
